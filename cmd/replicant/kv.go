package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/client"
)

type clientFlags struct {
	addr, consistency, password string
	tlsFlags                    clientTLSFlags
	// tls is what tlsFlags ask for, read before the command runs (nil:
	// plaintext).
	tls *tls.Config
}

func (c *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.addr, "addr", "127.0.0.1:8081", "HTTP address of any node")
	cmd.Flags().StringVar(&c.consistency, "consistency", "", "linearizable|session|eventual|bounded:<duration>")
	cmd.Flags().StringVar(&c.password, "password", os.Getenv("REPLICANT_PASSWORD"), "password (--requirepass of the server); default $REPLICANT_PASSWORD")
	c.tlsFlags.register(cmd)
	// Read the CA and certificate files once, before RunE, so that a bad
	// file is reported as such and not as a failed request.
	cmd.PreRunE = func(*cobra.Command, []string) error {
		var err error
		c.tls, err = c.tlsFlags.config()
		return err
	}
}

func (c *clientFlags) client() *client.Client {
	return client.New(c.addr, client.Options{Consistency: c.consistency, Password: c.password, TLS: c.tls})
}

func newGetCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a key's value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := cf.client().Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(v, '\n'))
			return err
		},
	}
	cf.register(cmd)
	return cmd
}

func newPutCmd() *cobra.Command {
	var cf clientFlags
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "put KEY [VALUE]",
		Short: "Store a value (read from stdin when VALUE is omitted)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v []byte
			if len(args) == 2 {
				v = []byte(args[1])
			} else {
				var err error
				if v, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
			}
			c := cf.client()
			if err := c.Put(cmd.Context(), args[0], v, ttl); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "OK", c.Token())
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "expire the key after this long")
	cf.register(cmd)
	return cmd
}

func newDelCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete a key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cf.client()
			if err := c.Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "OK", c.Token())
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}
