package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/client"
)

// leaderStatusTimeout bounds the extra request to the leader, so that a
// dead leader costs `member list` a short wait before it falls back to the
// asked node's own view.
const leaderStatusTimeout = 3 * time.Second

// memberList is `member list`'s result (and its --json document).
type memberList struct {
	// Source is the node whose status the list comes from: the leader when
	// it could be reached, since only the leader knows followers' positions.
	Source string `json:"source"`
	Leader string `json:"leader"`
	Epoch  uint64 `json:"epoch"`
	// Note says why the list is not the leader's view, if it is not.
	Note    string      `json:"note,omitempty"`
	Members []memberRow `json:"members"`
}

// memberRow is one member. Pointer fields are null when Source does not
// know them (a follower does not see the other followers' progress).
type memberRow struct {
	ID         string   `json:"id"`
	Role       string   `json:"role"`
	Sync       bool     `json:"sync"`
	Healthy    *bool    `json:"healthy"`
	State      string   `json:"state,omitempty"`
	Peer       string   `json:"peer,omitempty"`
	RESP       string   `json:"resp,omitempty"`
	HTTP       string   `json:"http,omitempty"`
	LagEntries *uint64  `json:"lag_entries"`
	LagBytes   *uint64  `json:"lag_bytes"`
	LagSeconds *float64 `json:"lag_seconds"`
}

func newMemberListCmd() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the cluster's members: role, sync, health, addresses, lag",
		Long: `list asks the node at --addr for its status and, when that node is a
follower, asks the leader too: only the leader knows every follower's
progress. If the leader cannot be reached, the node's own view is shown,
with unknown values as "-".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ml, err := listMembers(cmd.Context(), cf.client(), func(addr string) *client.Client {
				c := cf
				c.addr = addr
				return c.client()
			})
			if err != nil {
				return err
			}
			if ml.Note != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "note:", ml.Note)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(ml)
			}
			return printMembers(cmd.OutOrStdout(), ml)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	cf.register(cmd)
	return cmd
}

// listMembers builds the member list from the leader's status, reached
// through the node c talks to; dial makes a client for another node's HTTP
// address.
func listMembers(ctx context.Context, c *client.Client, dial func(addr string) *client.Client) (*memberList, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Role == "leader" {
		return membersFrom(st, ""), nil
	}
	var note string
	switch lm := findMember(st, st.Leader); {
	case st.Leader == "":
		note = fmt.Sprintf("%s knows no leader; showing its own view", st.ID)
	case lm == nil || lm.HTTP == "":
		note = fmt.Sprintf("%s does not know leader %s's HTTP address; showing its own view", st.ID, st.Leader)
	default:
		lctx, cancel := context.WithTimeout(ctx, leaderStatusTimeout)
		lst, err := dial(lm.HTTP).Status(lctx)
		cancel()
		switch {
		case err != nil:
			note = fmt.Sprintf("leader %s at %s did not answer (%s); showing %s's own view", st.Leader, lm.HTTP, errText(err), st.ID)
		case lst.Role != "leader":
			// Leadership moved between the two requests; one more hop
			// could race again, so say so rather than chase it.
			note = fmt.Sprintf("%s at %s is no longer the leader (it says %q); showing %s's own view", st.Leader, lm.HTTP, lst.Leader, st.ID)
		default:
			return membersFrom(lst, ""), nil
		}
	}
	return membersFrom(st, note), nil
}

func findMember(st *client.Status, id string) *client.Member {
	for i := range st.Members {
		if st.Members[i].ID == id {
			return &st.Members[i]
		}
	}
	return nil
}

// membersFrom turns one node's status into rows: the node itself (status
// lists only the others) and every other member, sorted by id.
func membersFrom(st *client.Status, note string) *memberList {
	leader := st.Role == "leader"
	ml := &memberList{Source: st.ID, Leader: st.Leader, Epoch: st.Epoch, Note: note}
	self := memberRow{ID: st.ID, Role: st.Role, Sync: slices.Contains(st.SyncSet, st.ID),
		Healthy: ptr(st.State == "leading" || st.State == "streaming"),
		State:   st.State, Peer: st.Peer, RESP: st.RESP, HTTP: st.HTTP}
	if leader {
		self.LagEntries, self.LagBytes, self.LagSeconds = ptr(uint64(0)), ptr(uint64(0)), ptr(0.0)
	} else {
		// A follower knows how far behind it is in time, not in entries.
		self.LagSeconds = ptr(st.LagSeconds)
	}
	ml.Members = append(ml.Members, self)
	for _, m := range st.Members {
		r := memberRow{ID: m.ID, Role: m.Role, Sync: m.Sync, State: m.State, Peer: m.Peer, RESP: m.RESP, HTTP: m.HTTP}
		switch {
		case leader && m.State == "":
			// The leader tracks no progress for this member (yet): its
			// positions are unknown, not zero.
			r.Healthy = ptr(false)
		case leader:
			r.Healthy = ptr(m.Healthy)
			r.LagEntries, r.LagSeconds = ptr(m.LagEntries), ptr(m.LagSeconds)
			if b, ok := lagBytes(m); ok {
				r.LagBytes = ptr(b)
			}
		case m.Role == "leader":
			// A follower sees the leader through its own stream: whether
			// that stream works is known, positions are not.
			r.Healthy = ptr(m.Healthy)
		default:
			// Another follower, seen from a follower: the status carries
			// zeros for what this node cannot know.
			r.State = ""
		}
		ml.Members = append(ml.Members, r)
	}
	slices.SortFunc(ml.Members, func(a, b memberRow) int { return compareIDs(a.ID, b.ID) })
	return ml
}

// compareIDs orders n2 before n10: by length first, then bytes, which is
// numeric order for ids sharing a prefix and a stable order otherwise.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lagBytes is a member's lag in bytes when the status knows it. Every log
// entry has a non-empty encoding, so lag_bytes 0 beside a non-zero
// lag_entries means the leader has no size for that part of its log (it
// keeps sizes only for batches it wrote itself, recently), not "no lag".
func lagBytes(m client.Member) (uint64, bool) {
	if m.LagEntries > 0 && m.LagBytes == 0 {
		return 0, false
	}
	return m.LagBytes, true
}

func printMembers(w io.Writer, ml *memberList) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tSYNC\tHEALTHY\tSTATE\tPEER\tRESP\tHTTP\tLAG\tLAG(s)")
	for _, r := range ml.Members {
		sync := "async"
		switch {
		case r.Role == "leader":
			sync = "-" // the leader never counts its own acknowledgement
		case r.Sync:
			sync = "sync"
		}
		healthy := "-"
		if r.Healthy != nil {
			healthy = strconv.FormatBool(*r.Healthy)
		}
		lag := "-"
		if r.LagEntries != nil {
			lag = strconv.FormatUint(*r.LagEntries, 10)
		}
		lagSec := "-"
		if r.LagSeconds != nil {
			lagSec = strconv.FormatFloat(*r.LagSeconds, 'f', 3, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Role, sync, healthy,
			orDash(r.State), orDash(r.Peer), orDash(r.RESP), orDash(r.HTTP), lag, lagSec)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ptr[T any](v T) *T { return &v }
