// Command replicant is the replicant server, local cluster launcher and
// command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process's exit code.
// main adds only the signal context and os.Exit, so tests drive this with
// the same error reporting a user sees.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	if args == nil {
		// cobra reads os.Args for a nil slice; the caller's args are all.
		args = []string{}
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if _, err := root.ExecuteContextC(ctx); err != nil {
		reportError(stderr, err)
		return 1
	}
	return 0
}

// reportError prints err once, with one prefix, and for a usage mistake
// the command whose help explains the right usage.
func reportError(w io.Writer, err error) {
	fmt.Fprintln(w, "Error:", errText(err))
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", ue.cmd.CommandPath())
	}
}

// errText is err's message for the command line. The client package
// prefixes its errors with its name, as Go packages do; on the command line
// "Error:" already says where the message comes from.
func errText(err error) string { return strings.TrimPrefix(err.Error(), "replicant: ") }

// usageError is a mistake in the command line itself (unknown command or
// flag, wrong number of arguments), as opposed to a failure while running.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "replicant",
		Short:         "A replicated key-value database that shows its replication guarantees",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(guardRestoredStart(newServerCmd()), newDevCmd(), newGetCmd(), newPutCmd(), newDelCmd(), newStatusCmd(), newConfigCmd(), newMemberCmd(), newLinkCmd(), newFailoverCmd(), newBenchCmd(), newVersionCmd(), newBackupCmd(), newRestoreCmd(), newCheckCmd())
	setVersion(root)
	// cobra adds its completion command only while executing; adding it
	// now lets strictArgs cover it like every other parent command.
	root.InitDefaultCompletionCmd()
	strictArgs(root)
	root.SetFlagErrorFunc(flagError)
	return root
}

// strictArgs makes every command with subcommands refuse an unknown one and
// marks argument errors as usage errors, through the whole tree. cobra
// checks subcommand names only at the root, and a parent command without a
// Run prints its help and exits 0, so `replicant member add` looked like
// success.
func strictArgs(cmd *cobra.Command) {
	if cmd.HasSubCommands() {
		if cmd.Run == nil && cmd.RunE == nil {
			cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		cmd.Args = unknownSubcommand
		// cobra's own default, which it sets only on its root-only path.
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
	} else if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return &usageError{cmd: c, err: err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		strictArgs(sub)
	}
}

// unknownSubcommand is the Args check of a parent command: any positional
// argument is a subcommand that does not exist.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 && !cmd.DisableSuggestions {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return &usageError{cmd: cmd, err: errors.New(msg)}
}

// flagError marks flag errors as usage errors. On a parent command,
// `member add --peer x` fails on --peer, but the mistake is the unknown
// subcommand "add", which the flag parser has already collected.
func flagError(cmd *cobra.Command, err error) error {
	if cmd.HasSubCommands() {
		if uerr := unknownSubcommand(cmd, cmd.Flags().Args()); uerr != nil {
			return uerr
		}
	}
	return &usageError{cmd: cmd, err: err}
}
