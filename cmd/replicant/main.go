// Command replicant is the replicant server, local cluster launcher and
// command-line client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "replicant:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "replicant",
		Short:         "A replicated key-value database that shows its replication guarantees",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCmd(), newDevCmd(), newGetCmd(), newPutCmd(), newDelCmd(), newStatusCmd(), newConfigCmd(), newMemberCmd(), newFailoverCmd(), newBenchCmd())
	return root
}
