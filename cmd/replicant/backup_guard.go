package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/replicant-db/replicant/internal/backup/datadir"
)

// guardRestoredStart makes the server command refuse the first start of a
// restored data directory in a role that would lose the restored data.
// The first member of --initial-cluster becomes the first leader, and a
// follower whose log is ahead of its leader's rolls back to it: a restored
// node listed second would replace its data with the empty state of the
// first (seen: "diverged: rolled back its log from 21 to 0"). Joining a
// running cluster would replace it with that cluster's snapshot.
func guardRestoredStart(server *cobra.Command) *cobra.Command {
	prev := server.PreRunE
	server.PreRunE = func(cmd *cobra.Command, args []string) error {
		if prev != nil {
			if err := prev(cmd, args); err != nil {
				return err
			}
		}
		fl := effectiveServerFlags(cmd.Flags())
		if fl == nil {
			return nil // the configuration does not load: RunE reports why
		}
		id, _ := fl.GetString("id")
		data, _ := fl.GetString("data")
		initial, _ := fl.GetString("initial-cluster")
		join, _ := fl.GetString("join")
		if data == "" {
			data = "data/" + id // as runServer defaults it
		}
		return checkRestoredStart(id, data, initial, join)
	}
	return server
}

// effectiveServerFlags is the server's flags as runServer will see them:
// the command line, then $REPLICANT_* and the --config file (loadConfig).
// The layers are loaded into a scratch copy of the flags, because
// loadConfig marks what it sets as set, and the server command loads them
// itself once more.
func effectiveServerFlags(cmdline *pflag.FlagSet) *pflag.FlagSet {
	scratch := &cobra.Command{}
	var f serverFlags
	f.register(scratch)
	fs := scratch.Flags()
	var failed bool
	cmdline.Visit(func(fl *pflag.Flag) {
		if fs.Lookup(fl.Name) != nil && fs.Set(fl.Name, fl.Value.String()) != nil {
			failed = true
		}
	})
	if failed {
		return cmdline // a value that does not copy: check the command line alone
	}
	if _, err := loadConfig(fs, os.Environ()); err != nil {
		return nil
	}
	return fs
}

func checkRestoredStart(id, data, initial, join string) error {
	m, err := datadir.ReadMarker(data)
	if err != nil || m == nil {
		return err // nil: not restored (bad flags are runServer's to report)
	}
	if _, err := os.Stat(filepath.Join(data, "control")); err == nil {
		return nil // started before: the new cluster exists and owns the data
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if join != "" {
		return fmt.Errorf("%s was restored from a backup (LSN %d): joining a running cluster would replace that data with the cluster's; start it with --initial-cluster as the first member instead (see docs/backup.md)", data, m.LSN)
	}
	members, err := parseInitialCluster(initial)
	if err != nil {
		return nil // runServer reports it
	}
	if len(members) > 0 && members[0].ID != id {
		return fmt.Errorf("%s was restored from a backup (LSN %d): list this node (%s) first in --initial-cluster, so that it is the first leader; listed after %s, it would follow a leader without the data and roll the restored data back (see docs/backup.md)", data, m.LSN, id, members[0].ID)
	}
	return nil
}
