package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/engine"
)

func newStatusCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a node's view of the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := cf.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			mode := st.Mode
			if mode == "" {
				mode = engine.ModeSingleLeader // nodes from before modes existed
			}
			if mode == engine.ModeLeaderless {
				return printLeaderless(out, st)
			}
			fmt.Fprintf(out, "node %s: %s, %s (leader %s), epoch %d, %s mode\n", st.ID, st.Role, st.State, st.Leader, st.Epoch, mode)
			fmt.Fprintf(out, "policy: sync=%q ack=%s fallback=%s sync set=%v", st.SyncPolicy, st.Ack, st.Fallback, st.SyncSet)
			if st.FallbackActive {
				fmt.Fprint(out, "  ** FALLBACK TO ASYNC ACTIVE **")
			}
			fmt.Fprintln(out)
			if st.Reason != "" {
				fmt.Fprintf(out, "reason: %s\n", st.Reason)
			}
			if st.Role == "follower" {
				fmt.Fprintf(out, "replica lag: %.3fs, %d entries\n", st.LagSeconds, st.LagEntries)
			}
			fmt.Fprintf(out, "LSN: first %d, last %d, commit %d, applied %d; token %s\n", st.FirstLSN, st.LastLSN, st.CommitLSN, st.AppliedLSN, st.Token)
			if mode == engine.ModeMultiLeader {
				if err := printSite(out, st); err != nil {
					return err
				}
			}
			if len(st.Members) == 0 {
				return nil
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			for _, ev := range st.Events {
				fmt.Fprintf(out, "event %s %s %s: %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Follower, ev.Message)
			}
			fmt.Fprintln(tw, "MEMBER\tROLE\tSYNC\tHEALTHY\tRECEIVED\tDURABLE\tAPPLIED\tLAG\tLAG(bytes)\tLAG(s)\tSTATE")
			for _, m := range st.Members {
				sync := "async"
				switch {
				case m.Role == "leader":
					sync = "-" // the leader never counts itself
				case m.Sync:
					sync = "sync"
				}
				// "-" when the status does not know the bytes (see
				// lagBytes), rather than a 0 that reads as "caught up".
				lb := "-"
				if b, ok := lagBytes(m); ok {
					lb = strconv.FormatUint(b, 10)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%d\t%d\t%d\t%s\t%.3f\t%s\n", m.ID, m.Role, sync, m.Healthy, m.ReceivedLSN, m.DurableLSN, m.AppliedLSN, m.LagEntries, lb, m.LagSeconds, m.State)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, m := range st.Members {
				if m.State == "snapshotting" {
					fmt.Fprintf(out, "%s: receiving a snapshot, %d bytes sent\n", m.ID, m.SnapshotBytes)
				}
				if m.Reason != "" {
					fmt.Fprintf(out, "%s: %s\n", m.ID, m.Reason)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw status JSON")
	cf.register(cmd)
	return cmd
}

// printSite shows a multi-leader node's site, its links and how many
// conflicts it resolved.
func printSite(out io.Writer, st *client.Status) error {
	fmt.Fprintf(out, "site %s: %d links, %d conflicts resolved by last-writer-wins\n", st.Site, len(st.Links), st.Conflicts)
	if len(st.Links) == 0 {
		return nil
	}
	return printLinks(out, st.Links)
}

// printLeaderless shows a leaderless node: N, the ring (each node's share
// of the keys, its health, the hints kept for it and the last anti-entropy
// comparison with it) and any data movement after a membership change.
func printLeaderless(out io.Writer, st *client.Status) error {
	fmt.Fprintf(out, "node %s: %s, %s, leaderless mode (N=%d); log LSN %d\n", st.ID, st.Role, st.State, st.Replicas, st.LastLSN)
	members := map[string]client.Member{}
	for _, m := range st.Members {
		members[m.ID] = m
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSHARE\tFIRST\tARCS\tHEALTHY\tHINTS\tLAST ANTI-ENTROPY\tREASON")
	for _, r := range st.Ring {
		m := members[r.ID]
		hints, ae := "-", "-"
		if m.HintsPending != nil {
			hints = strconv.FormatUint(*m.HintsPending, 10)
		}
		if m.LastAntiEntropy != "" {
			ae = m.LastAntiEntropy
		}
		id := r.ID
		if id == st.ID {
			id += " (this node)"
		}
		fmt.Fprintf(tw, "%s\t%.1f%%\t%.1f%%\t%d\t%v\t%s\t%s\t%s\n", id, 100*r.Share, 100*r.Primary, r.Ranges, r.Healthy, hints, ae, m.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rb := st.Rebalance; rb != nil {
		fmt.Fprintf(out, "data movement (%s): %s, %d keys scanned, %d moved, %d failed, since %s\n",
			strings.Join(rb.Members, ","), rb.State, rb.Scanned, rb.Moved, rb.Failed, rb.Started)
	}
	return nil
}
