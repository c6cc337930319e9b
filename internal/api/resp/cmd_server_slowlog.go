package resp

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Redis's slowlog limits on what an entry keeps of a command.
const (
	slowlogMaxArgs   = 32
	slowlogMaxArgLen = 128
	// DefaultSlowlogSlowerThan and DefaultSlowlogMaxLen are Redis's
	// defaults (µs, entries).
	DefaultSlowlogSlowerThan = 10000
	DefaultSlowlogMaxLen     = 128
)

type slowEntry struct {
	id       int64
	at       time.Time
	duration time.Duration
	args     []string
	addr     string
	name     string
}

// slowlog keeps the most recent commands that ran longer than threshold
// microseconds (negative: none; 0: every command), newest first.
type slowlog struct {
	threshold atomic.Int64
	maxLen    atomic.Int64
	mu        sync.Mutex
	entries   []slowEntry
	nextID    int64
}

func (l *slowlog) init() {
	l.threshold.Store(DefaultSlowlogSlowerThan)
	l.maxLen.Store(DefaultSlowlogMaxLen)
}

func (l *slowlog) setMaxLen(n int64) {
	l.maxLen.Store(n)
	l.mu.Lock()
	if int64(len(l.entries)) > n {
		l.entries = l.entries[:n]
	}
	l.mu.Unlock()
}

// observe logs the command args of c if it took d or longer than the
// threshold. The arguments are copied: they are released after the command.
func (l *slowlog) observe(c *client, args [][]byte, d time.Duration) {
	th := l.threshold.Load()
	if th < 0 || d.Microseconds() < th {
		return
	}
	n := min(len(args), slowlogMaxArgs)
	kept := make([]string, 0, n)
	for i := range n {
		if i == slowlogMaxArgs-1 && len(args) > slowlogMaxArgs {
			kept = append(kept, fmt.Sprintf("... (%d more arguments)", len(args)-slowlogMaxArgs+1))
			break
		}
		a := args[i]
		if len(a) > slowlogMaxArgLen {
			kept = append(kept, fmt.Sprintf("%s... (%d more bytes)", a[:slowlogMaxArgLen], len(a)-slowlogMaxArgLen))
			continue
		}
		kept = append(kept, string(a))
	}
	c.pubMu.Lock()
	name := c.name
	c.pubMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	max := l.maxLen.Load()
	if max == 0 {
		return
	}
	e := slowEntry{id: l.nextID, at: time.Now(), duration: d, args: kept, addr: c.addr, name: name}
	l.nextID++
	l.entries = append(l.entries, slowEntry{})
	copy(l.entries[1:], l.entries)
	l.entries[0] = e
	if int64(len(l.entries)) > max {
		l.entries = l.entries[:max]
	}
}

func (s *Server) cmdSlowlog(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "get" && len(args) <= 3:
		count := int64(10)
		if len(args) == 3 {
			n, err := strconv.ParseInt(string(args[2]), 10, 64)
			if err != nil || n < -1 {
				c.err("ERR count should be greater than or equal to -1")
				return
			}
			count = n
		}
		s.slowlog.mu.Lock()
		es := s.slowlog.entries
		if count >= 0 && int64(len(es)) > count {
			es = es[:count]
		}
		es = append([]slowEntry(nil), es...)
		s.slowlog.mu.Unlock()
		c.array(len(es))
		for _, e := range es {
			c.array(6)
			c.int(e.id)
			c.int(e.at.Unix())
			c.int(e.duration.Microseconds())
			c.array(len(e.args))
			for _, a := range e.args {
				c.bulkString(a)
			}
			c.bulkString(e.addr)
			c.bulkString(e.name)
		}
	case sub == "len" && len(args) == 2:
		s.slowlog.mu.Lock()
		n := len(s.slowlog.entries)
		s.slowlog.mu.Unlock()
		c.int(int64(n))
	case sub == "reset" && len(args) == 2:
		s.slowlog.mu.Lock()
		s.slowlog.entries = nil
		s.slowlog.mu.Unlock()
		c.ok()
	case sub == "help" && len(args) == 2:
		help := []string{
			"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET [<count>]",
			"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"    Entries are made of:",
			"    id, timestamp, time in microseconds, arguments array, client IP and port,",
			"    client name",
			"LEN",
			"    Return the length of the slowlog.",
			"RESET",
			"    Reset the slowlog.",
			"HELP",
			"    Print this help.",
		}
		c.array(len(help))
		for _, l := range help {
			c.simple(l)
		}
	case sub == "get" || sub == "len" || sub == "reset" || sub == "help":
		c.errorf("ERR unknown subcommand or wrong number of arguments for '%s'. Try SLOWLOG HELP.", args[1])
	default:
		c.errorf("ERR unknown subcommand '%.128s'. Try SLOWLOG HELP.", args[1])
	}
}
