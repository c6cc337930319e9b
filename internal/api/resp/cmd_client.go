package resp

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clientRegistry is every open connection of a Server, for CLIENT LIST and
// CLIENT KILL. A connection is in it from its first command read to its
// close.
type clientRegistry struct {
	mu      sync.Mutex
	clients map[uint64]*client
}

func (r *clientRegistry) add(c *client) {
	r.mu.Lock()
	r.clients[c.id] = c
	r.mu.Unlock()
}

func (r *clientRegistry) remove(c *client) {
	r.mu.Lock()
	delete(r.clients, c.id)
	r.mu.Unlock()
}

// list returns the open connections in id (connection) order, as Redis
// lists them.
func (r *clientRegistry) list() []*client {
	r.mu.Lock()
	out := make([]*client, 0, len(r.clients))
	for _, c := range r.clients {
		out = append(out, c)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b *client) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return out
}

// connFD is the connection's file descriptor (Redis's fd=), or -1.
func connFD(nc net.Conn) int {
	if fc, ok := nc.(*fdConn); ok {
		return fc.fd
	}
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	_ = rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// setLast records the command the connection runs now.
func (c *client) setLast(at time.Time, cmd string) {
	c.pubMu.Lock()
	c.lastAt, c.lastCmd = at, cmd
	c.pubMu.Unlock()
}

// showMulti publishes the transaction state for CLIENT LIST (c.multi is
// the connection's own).
func (c *client) showMulti() {
	n := int64(-1)
	if c.multi != nil {
		n = int64(len(c.multi.cmds))
	}
	c.multiShown.Store(n)
}

// kill closes another connection from outside its goroutine: its pending
// read fails and its blocked command (WAIT, BLPOP, …) is cancelled, so the owner
// cleans up as after a client hang-up.
func (c *client) kill() {
	c.cancel()
	_ = c.conn.nc.Close()
}

// info is the connection's CLIENT INFO / CLIENT LIST line, in Redis 7.2's
// field order. The buffer and memory fields are Redis internals replicant
// does not have; they read 0.
func (c *client) info() string {
	c.pubMu.Lock()
	name, lastAt, lastCmd, proto, libName, libVer := c.name, c.lastAt, c.lastCmd, c.proto, c.libName, c.libVer
	flags := ""
	if c.noEvict {
		flags += "e"
	}
	if c.noTouch {
		flags += "T"
	}
	c.pubMu.Unlock()
	if c.blocking.Load() {
		flags = "b" + flags
	}
	multi := c.multiShown.Load()
	if multi >= 0 {
		flags = "x" + flags
	}
	if flags == "" {
		flags = "N"
	}
	now := time.Now()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=0 sub=0 psub=0 ssub=0 multi=%d qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s",
		c.id, c.addr, c.laddr, c.fd, name, int64(now.Sub(c.created).Seconds()), int64(now.Sub(lastAt).Seconds()),
		flags, multi, lastCmd, proto, libName, libVer)
}

// clientSubcommands are CLIENT's subcommands and their arities (as Redis's
// command table: negative means at least).
var clientSubcommands = map[string]int{
	"setname": 3, "getname": 2, "id": 2, "info": 2, "setinfo": 4, "list": -2,
	"kill": -3, "no-evict": 3, "no-touch": 3, "unblock": -3, "help": 2,
}

func (s *Server) cmdClient(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	want, ok := clientSubcommands[sub]
	if !ok {
		c.errorf("ERR unknown subcommand '%.128s'. Try CLIENT HELP.", args[1])
		return
	}
	if (want > 0 && len(args) != want) || (want < 0 && len(args) < -want) {
		c.arityErr("client|" + sub)
		return
	}
	c.setLast(c.lastAt, "client|"+sub)
	switch sub {
	case "setname":
		if !validClientName(args[2]) {
			c.err("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.pubMu.Lock()
		c.name = string(args[2])
		c.pubMu.Unlock()
		c.ok()
	case "getname":
		if c.name == "" {
			c.null()
			return
		}
		c.bulkString(c.name)
	case "id":
		c.int(int64(c.id))
	case "info":
		c.verbatim(c.info() + "\n")
	case "setinfo":
		attr := strings.ToLower(string(args[2]))
		if attr != "lib-name" && attr != "lib-ver" {
			c.errorf("ERR Unrecognized option '%s'", args[2])
			return
		}
		if !validClientName(args[3]) {
			c.errorf("ERR %s cannot contain spaces, newlines or special characters.", attr)
			return
		}
		c.pubMu.Lock()
		if attr == "lib-name" {
			c.libName = string(args[3])
		} else {
			c.libVer = string(args[3])
		}
		c.pubMu.Unlock()
		c.ok()
	case "list":
		s.clientList(c, args[2:])
	case "kill":
		s.clientKill(c, args[2:])
	case "unblock":
		s.clientUnblock(c, args)
	case "no-evict", "no-touch":
		// Accepted as Redis does. replicant never evicts, and reads never
		// touch keys (no access times are kept), so neither changes
		// anything but the flags CLIENT LIST shows.
		var on bool
		switch strings.ToLower(string(args[2])) {
		case "on":
			on = true
		case "off":
		default:
			c.err(msgSyntax)
			return
		}
		c.pubMu.Lock()
		if sub == "no-evict" {
			c.noEvict = on
		} else {
			c.noTouch = on
		}
		c.pubMu.Unlock()
		c.ok()
	case "help":
		help := []string{
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME", "    Return the name of the current connection.",
			"ID", "    Return the ID of the current connection.",
			"INFO", "    Return information about the current client connection.",
			"KILL <ip:port>", "    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]",
			"    Kill connections. Options are: ID <client-id>, TYPE normal|master|replica|pubsub,",
			"    USER <username>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
			"LIST [TYPE normal|master|replica|pubsub] [ID <client-id> [<client-id> ...]]",
			"    Return information about client connections.",
			"NO-EVICT (ON|OFF)", "    Accepted; replicant never evicts clients.",
			"NO-TOUCH (ON|OFF)", "    Accepted; replicant keeps no access times.",
			"SETINFO <option> <value>", "    Set client meta attributes: LIB-NAME or LIB-VER.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"UNBLOCK <clientid> [TIMEOUT|ERROR]",
			"    Unblock the specified blocked client (WAIT, BLPOP, …): as if it timed out, or with an error.",
			"HELP", "    Print this help.",
		}
		c.array(len(help))
		for _, l := range help {
			c.simple(l)
		}
	}
}

// validClientType checks a TYPE filter; only normal connections exist.
func validClientType(t string) (normal, ok bool) {
	switch strings.ToLower(t) {
	case "normal":
		return true, true
	case "master", "slave", "replica", "pubsub":
		return false, true
	}
	return false, false
}

// clientList serves CLIENT LIST [TYPE t] [ID id ...].
func (s *Server) clientList(c *client, opts [][]byte) {
	all := s.registry.list()
	var out []*client
	switch {
	case len(opts) == 0:
		out = all
	case len(opts) == 2 && strings.EqualFold(string(opts[0]), "type"):
		normal, ok := validClientType(string(opts[1]))
		if !ok {
			c.errorf("ERR Unknown client type '%s'", opts[1])
			return
		}
		if normal {
			out = all
		}
	case len(opts) >= 2 && strings.EqualFold(string(opts[0]), "id"):
		ids := map[uint64]bool{}
		for _, a := range opts[1:] {
			id, err := strconv.ParseInt(string(a), 10, 64)
			if err != nil || id <= 0 {
				c.err("ERR Invalid client ID")
				return
			}
			ids[uint64(id)] = true
		}
		for _, o := range all {
			if ids[o.id] {
				out = append(out, o)
			}
		}
	default:
		c.err(msgSyntax)
		return
	}
	var b strings.Builder
	for _, o := range out {
		b.WriteString(o.info())
		b.WriteByte('\n')
	}
	c.verbatim(b.String())
}

// clientKill serves CLIENT KILL addr (the old form: OK or an error) and
// CLIENT KILL <filter> <value> ... (the number of connections closed).
func (s *Server) clientKill(c *client, opts [][]byte) {
	if len(opts) == 1 {
		for _, o := range s.registry.list() {
			if o.addr == string(opts[0]) {
				c.ok()
				s.killClient(c, o)
				return
			}
		}
		c.err("ERR No such client")
		return
	}
	if len(opts)%2 != 0 {
		c.err(msgSyntax)
		return
	}
	var (
		id          uint64
		addr, laddr string
		anyType     = true
		skipMe      = true
	)
	for i := 0; i < len(opts); i += 2 {
		val := string(opts[i+1])
		switch strings.ToLower(string(opts[i])) {
		case "id":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				c.err("ERR client-id should be greater than 0")
				return
			}
			id = uint64(n)
		case "type":
			normal, ok := validClientType(val)
			if !ok {
				c.errorf("ERR Unknown client type '%s'", val)
				return
			}
			anyType = normal
		case "user":
			if val != "default" {
				c.errorf("ERR No such user '%s'", val)
				return
			}
		case "addr":
			addr = val
		case "laddr":
			laddr = val
		case "skipme":
			switch strings.ToLower(val) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				c.err(msgSyntax)
				return
			}
		default:
			c.err(msgSyntax)
			return
		}
	}
	killed := 0
	var self bool
	for _, o := range s.registry.list() {
		if !anyType || (id != 0 && o.id != id) || (addr != "" && o.addr != addr) || (laddr != "" && o.laddr != laddr) {
			continue
		}
		if o == c {
			if skipMe {
				continue
			}
			self = true
		} else {
			o.kill()
		}
		killed++
	}
	c.int(int64(killed))
	if self {
		s.killClient(c, c)
	}
}

// killClient closes o on behalf of c; c itself closes once its reply is
// sent, as Redis does.
func (s *Server) killClient(c, o *client) {
	if o == c {
		c.quit = true
		return
	}
	o.kill()
}

// blockOn marks the connection blocked (INFO blocked_clients, CLIENT LIST
// flag b) while a blocking command waits, and returns the context to wait
// with: CLIENT UNBLOCK from another connection cancels it. done ends the
// block (calling it again just answers again) and says how CLIENT UNBLOCK ended it: "" (it did not), "timeout"
// (answer as if the command's timeout passed) or "error" (answer
// msgUnblocked).
func (c *client) blockOn(ctx context.Context) (bctx context.Context, done func() (unblocked string)) {
	bctx, cancel := context.WithCancel(ctx)
	c.pubMu.Lock()
	c.unblock, c.unblockedBy = cancel, ""
	c.pubMu.Unlock()
	c.blocking.Store(true)
	c.blockedCmd = true
	c.s.blocked.Add(1)
	ended, how := false, ""
	return bctx, func() string {
		// Idempotent: the command may end the block itself and defer it too.
		if ended {
			return how
		}
		ended = true
		c.blocking.Store(false)
		c.s.blocked.Add(-1)
		c.pubMu.Lock()
		how = c.unblockedBy
		c.unblock, c.unblockedBy = nil, ""
		c.pubMu.Unlock()
		cancel()
		return how
	}
}

// msgUnblocked is Redis's reply to a command ended by CLIENT UNBLOCK ERROR.
const msgUnblocked = "UNBLOCKED client unblocked via CLIENT UNBLOCK"

// clientUnblock serves CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if the
// connection was blocked and is released, else 0.
func (s *Server) clientUnblock(c *client, args [][]byte) {
	how := "timeout"
	if len(args) == 4 {
		switch strings.ToLower(string(args[3])) {
		case "timeout":
		case "error":
			how = "error"
		default:
			c.err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
			return
		}
	} else if len(args) > 4 {
		c.errorf("ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP.", args[1])
		return
	}
	id, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	s.registry.mu.Lock()
	o := s.registry.clients[uint64(id)]
	s.registry.mu.Unlock()
	if o == nil || !o.blocking.Load() {
		c.int(0)
		return
	}
	o.pubMu.Lock()
	cancel := o.unblock
	if cancel != nil && o.unblockedBy == "" {
		o.unblockedBy = how
	}
	o.pubMu.Unlock()
	if cancel == nil {
		c.int(0)
		return
	}
	cancel()
	c.int(1)
}
