package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/client"
)

// linkList is GET /v1/links's answer (and `link list --json`).
type linkList struct {
	Site  string        `json:"site"`
	Links []client.Link `json:"links"`
}

func newLinkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Manage the links a multi-leader site pulls other sites' writes through",
		Long: `A link is directed: the site of the node at --addr pulls the writes of the
other site. Link both ways (run add on each site) for the sites to exchange
writes. Links live in the site's control plane: any node of the site can be
asked, and they survive failovers on either side.`,
	}
	cmd.AddCommand(newLinkAddCmd(), newLinkRemoveCmd(), newLinkListCmd())
	return cmd
}

func newLinkAddCmd() *cobra.Command {
	var cf clientFlags
	var peer string
	cmd := &cobra.Command{
		Use:     "add --peer ADDR",
		Short:   "Make this site pull from the site that owns ADDR (a peer address of any of its nodes)",
		Example: `  replicant link add --addr 127.0.0.1:8081 --peer 127.0.0.1:9082`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if peer == "" {
				return &usageError{cmd: cmd, err: errors.New("--peer is required: a peer address (--peer of `replicant server`) of a node of the other site")}
			}
			if _, _, err := net.SplitHostPort(peer); err != nil {
				return &usageError{cmd: cmd, err: fmt.Errorf("invalid --peer %q: want HOST:PORT: %w", peer, err)}
			}
			var ls client.Link
			if err := cf.call(cmd.Context(), http.MethodPost, "/v1/links", map[string]string{"peer": peer}, &ls); err != nil {
				return err
			}
			return printLinks(cmd.OutOrStdout(), []client.Link{ls})
		},
	}
	cmd.Flags().StringVar(&peer, "peer", "", "peer address of any node of the other site")
	cf.register(cmd)
	return cmd
}

func newLinkRemoveCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "remove SITE",
		Short: "Stop pulling from SITE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.call(cmd.Context(), http.MethodDelete, "/v1/links/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed the link from site %s\n", args[0])
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func newLinkListCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the sites this site pulls from, with their state and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ll linkList
			if err := cf.call(cmd.Context(), http.MethodGet, "/v1/links", nil, &ll); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(ll)
			}
			if len(ll.Links) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: site %s has no links; add one with `replicant link add --peer ADDR`\n", ll.Site)
			}
			return printLinks(cmd.OutOrStdout(), ll.Links)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the links as JSON")
	cf.register(cmd)
	return cmd
}

// printLinks prints links as `link list` and `status` show them.
func printLinks(w io.Writer, links []client.Link) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tSTATE\tCONNECTED\tLAG_ENTRIES\tLAG_SECONDS\tAPPLIED_ORIGIN_LSN\tREMOTE_LSN\tREASON")
	for _, l := range links {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.3f\t%d\t%d\t%s\n", l.Site, orDash(l.State), orDash(l.Connected),
			l.LagEntries, l.LagSeconds, l.AppliedOriginLSN, l.RemoteLSN, orDash(l.Reason))
	}
	return tw.Flush()
}

// call sends one request to the node at --addr and decodes its JSON answer
// into out (nil: the answer is not read). It serves the routes the client
// package has no method for (links); it sends the password as the client
// package does and reports a refusal as the same *client.StatusError.
func (c *clientFlags) call(ctx context.Context, method, path string, in, out any) error {
	return callNodeTLS(ctx, c.tls, c.addr, c.password, method, path, in, out)
}

// callTimeout bounds one request, as client.New's default client does.
const callTimeout = 30 * time.Second

// nodeHTTP follows redirects as net/http does (a 307 keeps the method and
// the body) but keeps the password when the redirect leaves for another
// host: a node redirects a change to its leader, which is another host of
// the same cluster and requires the same --requirepass. net/http drops
// Authorization there, which would turn the redirect into a 401.
var nodeHTTP = &http.Client{
	Timeout: callTimeout,
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if a := via[0].Header.Get("Authorization"); a != "" {
			req.Header.Set("Authorization", a)
		}
		return nil
	},
}

func callNode(ctx context.Context, addr, password, method, path string, in, out any) error {
	return callNodeTLS(ctx, nil, addr, password, method, path, in, out)
}

// callNodeTLS is callNode over HTTPS when cfg is set (see clientTLSFlags).
func callNodeTLS(ctx context.Context, cfg *tls.Config, addr, password, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		// A *bytes.Reader gives the request a GetBody, which is what lets
		// net/http resend the body on a 307.
		body = bytes.NewReader(b)
	}
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
		if cfg != nil {
			base = "https://" + addr
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if password != "" {
		req.Header.Set("Authorization", "Bearer "+password)
	}
	resp, err := httpClient(cfg, nodeHTTP).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := strings.TrimSpace(string(data))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &client.StatusError{Code: resp.StatusCode, Message: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
