package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/client"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show or change the cluster's replication policy"}
	var cf clientFlags
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change sync (commit policy), ack or sync-fallback at run time",
		Example: `  replicant config set sync 'ANY 1 (*)'
  replicant config set sync 'FIRST 1 (n2,n3)'
  replicant config set ack applied
  replicant config set sync-fallback async`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c client.Config
			switch args[0] {
			case "sync":
				c.Sync = args[1]
			case "ack":
				c.Ack = args[1]
			case "sync-fallback", "fallback":
				c.Fallback = args[1]
			default:
				return fmt.Errorf("unknown setting %q: want sync, ack or sync-fallback", args[0])
			}
			out, err := cf.client().SetConfig(cmd.Context(), c)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sync=%q ack=%s sync-fallback=%s\n", out.Sync, out.Ack, out.Fallback)
			return nil
		},
	}
	cf.register(set)
	var gf clientFlags
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the replication policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := gf.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sync=%q ack=%s sync-fallback=%s\n", st.SyncPolicy, st.Ack, st.Fallback)
			return nil
		},
	}
	gf.register(get)
	cmd.AddCommand(set, get)
	return cmd
}

func newMemberCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "Manage cluster membership"}
	var cf clientFlags
	rm := &cobra.Command{
		Use:   "remove ID",
		Short: "Take a node out of the cluster (not the current leader)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.client().RemoveMember(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
	cf.register(rm)
	cmd.AddCommand(rm, newMemberListCmd())
	return cmd
}

func newFailoverCmd() *cobra.Command {
	var cf clientFlags
	var to string
	cmd := &cobra.Command{
		Use:   "failover --to ID",
		Short: "Planned switchover: pause writes, let the target catch up, hand leadership over",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return fmt.Errorf("--to is required")
			}
			if err := cf.client().Failover(cmd.Context(), to); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is the leader\n", to)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "member to hand leadership to")
	cf.register(cmd)
	return cmd
}
