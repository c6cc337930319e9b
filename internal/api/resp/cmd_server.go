package resp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// splitAddr splits host:port; a missing or bad port is 0.
func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// leaderAddr returns the RESP address of st's leader, as far as st knows.
func leaderAddr(st engine.Status) string {
	if st.Leader == st.ID {
		return st.RESP
	}
	for _, m := range st.Members {
		if m.ID == st.Leader {
			return m.RESP
		}
	}
	return ""
}

func (s *Server) infoReplication(kv func(string, any), st engine.Status) {
	replID := fmt.Sprintf("%040x", st.Epoch)
	if st.Role == "follower" {
		host, port := splitAddr(leaderAddr(st))
		link := "up"
		if st.Leader == "" {
			link = "down"
		}
		kv("role", "slave")
		kv("master_host", host)
		kv("master_port", port)
		kv("master_link_status", link)
		kv("master_last_io_seconds_ago", 0)
		kv("master_sync_in_progress", 0)
		kv("slave_read_repl_offset", st.LastLSN)
		kv("slave_repl_offset", st.AppliedLSN)
		kv("slave_priority", 100)
		kv("slave_read_only", 1)
		kv("replica_announced", 1)
		kv("connected_slaves", 0)
		kv("master_failover_state", "no-failover")
		kv("master_replid", replID)
		kv("master_replid2", strings.Repeat("0", 40))
		kv("master_repl_offset", st.AppliedLSN)
		kv("second_repl_offset", -1)
		kv("repl_backlog_active", 1)
		kv("repl_backlog_first_byte_offset", st.FirstLSN)
		kv("repl_backlog_histlen", logEntries(st))
		return
	}
	kv("role", "master")
	kv("connected_slaves", len(st.Members))
	for i, m := range st.Members {
		host, port := splitAddr(m.RESP)
		state := "online"
		if !m.Healthy {
			state = "offline"
		}
		kv("slave"+strconv.Itoa(i), fmt.Sprintf("ip=%s,port=%d,state=%s,offset=%d,lag=%d",
			host, port, state, m.AppliedLSN, int64(m.LagSeconds)))
	}
	kv("master_failover_state", "no-failover")
	kv("master_replid", replID)
	kv("master_replid2", strings.Repeat("0", 40))
	kv("master_repl_offset", st.CommitLSN)
	kv("second_repl_offset", -1)
	kv("repl_backlog_active", 1)
	kv("repl_backlog_first_byte_offset", st.FirstLSN)
	kv("repl_backlog_histlen", logEntries(st))
}

// logEntries is the number of entries in the node's log.
func logEntries(st engine.Status) uint64 {
	if st.FirstLSN == 0 || st.LastLSN < st.FirstLSN {
		return 0
	}
	return st.LastLSN - st.FirstLSN + 1
}

func (s *Server) cmdRole(c *client, _ [][]byte) {
	st := s.b.Status()
	if st.Role == "follower" {
		host, port := splitAddr(leaderAddr(st))
		state := "connected"
		if st.Leader == "" {
			state = "connect"
		}
		c.array(5)
		c.bulkString("slave")
		c.bulkString(host)
		c.int(int64(port))
		c.bulkString(state)
		c.int(int64(st.AppliedLSN))
		return
	}
	c.array(3)
	c.bulkString("master")
	c.int(int64(st.CommitLSN))
	c.array(len(st.Members))
	for _, m := range st.Members {
		host, port := splitAddr(m.RESP)
		c.array(3)
		c.bulkString(host)
		c.bulkString(strconv.Itoa(port))
		c.bulkString(strconv.FormatUint(m.AppliedLSN, 10))
	}
}

// waitPeerCheck is how often a blocked WAIT looks whether its client is
// still there (the replicas' progress itself wakes it).
const waitPeerCheck = 500 * time.Millisecond

func (s *Server) cmdWait(c *client, args [][]byte) {
	want, ok1 := parseInt(args[1])
	timeout, ok2 := parseInt(args[2])
	if !ok1 || !ok2 {
		c.err(msgNotInt)
		return
	}
	if timeout < 0 {
		c.err("ERR timeout is negative")
		return
	}
	if !s.b.IsLeader() {
		c.err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.")
		return
	}
	ctx := c.ctx
	unblocked := func() string { return "" }
	if c.noBlock { // inside EXEC (tx.go): count, never wait
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		cancel()
	} else {
		ctx, unblocked = c.blockOn(ctx)
		defer unblocked()
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(min(timeout, int64(time.Duration(1<<62)/time.Millisecond)))*time.Millisecond)
		defer cancel()
	}
	target := c.lastWrite.LSN
	for {
		// Wait in slices, to look for a departed client in between.
		wctx, cancel := context.WithTimeout(ctx, waitPeerCheck)
		n, err := s.b.WaitReplicas(wctx, target, int(min(want, 1<<30)))
		cancel()
		switch {
		case err != nil:
			c.backendErr(err)
			return
		case int64(n) >= want || ctx.Err() != nil:
			if unblocked() == "error" {
				c.err(msgUnblocked)
				return
			}
			c.int(int64(n))
			return
		case c.rd != nil && c.rd.peerGone():
			c.int(int64(n)) // nobody will read it
			return
		}
	}
}

func (s *Server) cmdTime(c *client, _ [][]byte) {
	now := time.Now()
	c.array(2)
	c.bulkString(strconv.FormatInt(now.Unix(), 10))
	c.bulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

func (s *Server) cmdToken(c *client, _ [][]byte) { c.bulkString(c.token.String()) }

func (s *Server) cmdSession(c *client, args [][]byte) {
	t, err := engine.ParseToken(string(args[1]))
	if err != nil {
		c.err("ERR " + err.Error())
		return
	}
	c.observe(t)
	c.floor = c.floor.Later(t)
	c.ok()
}

func (s *Server) cmdConsistency(c *client, args [][]byte) {
	if len(args) == 1 {
		c.bulkString(c.cons.String())
		return
	}
	parts := make([]string, len(args)-1)
	for i, a := range args[1:] {
		parts[i] = string(a)
	}
	cons, err := engine.ParseConsistency(strings.Join(parts, " "))
	if err != nil {
		c.err("ERR " + err.Error())
		return
	}
	c.cons = cons
	c.ok()
}

func (s *Server) cmdStatus(c *client, _ [][]byte) {
	b, err := json.Marshal(s.b.Status())
	if err != nil {
		c.err("ERR " + err.Error())
		return
	}
	c.bulk(b)
}
