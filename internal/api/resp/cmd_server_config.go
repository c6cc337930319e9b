package resp

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// configParam is one CONFIG GET/SET parameter. replicant serves the
// parameters clients and tools read or set; each either changes what it
// names at run time (maxclients, timeout, slowlog-*), or reports how
// replicant works and accepts only that value (appendonly yes,
// appendfsync always, save "", maxmemory 0 with noeviction: the log is an
// always-fsynced append-only file, and nothing is ever evicted), or is
// immutable here as in Redis (databases, port, bind).
type configParam struct {
	name string
	get  func(s *Server) string
	// set validates v and returns the change to make, or the reason it is
	// refused (Redis's text after "CONFIG SET failed (…) - "). nil: the
	// parameter is immutable.
	set func(s *Server, v string) (apply func(), refused string)
}

// configParams returns the served parameters, sorted by name.
func configParams() []configParam {
	yesNo := func(v string) (bool, string) {
		switch strings.ToLower(v) {
		case "yes":
			return true, ""
		case "no":
			return false, ""
		}
		return false, "argument must be 'yes' or 'no'"
	}
	only := func(want, why string) func(*Server, string) (func(), string) {
		return func(_ *Server, v string) (func(), string) {
			if !strings.EqualFold(v, want) {
				return nil, why
			}
			return func() {}, ""
		}
	}
	intRange := func(lo, hi int64, apply func(*Server, int64)) func(*Server, string) (func(), string) {
		return func(s *Server, v string) (func(), string) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, "argument couldn't be parsed into an integer"
			}
			if n < lo || n > hi {
				return nil, "argument must be between " + strconv.FormatInt(lo, 10) + " and " + strconv.FormatInt(hi, 10) + " inclusive"
			}
			return func() { apply(s, n) }, ""
		}
	}
	const noEviction = "replicant never evicts keys: only noeviction is supported"
	ps := []configParam{
		{name: "appendonly", get: func(*Server) string { return "yes" },
			set: func(_ *Server, v string) (func(), string) {
				on, why := yesNo(v)
				if why != "" {
					return nil, why
				}
				if !on {
					return nil, "the replication log is replicant's append-only file and cannot be turned off"
				}
				return func() {}, ""
			}},
		{name: "appendfsync", get: func(*Server) string { return "always" },
			set: func(_ *Server, v string) (func(), string) {
				switch strings.ToLower(v) {
				case "always":
					return func() {}, ""
				case "everysec", "no":
					return nil, "replicant fsyncs its log before acknowledging a write: only always is supported"
				}
				return nil, "argument(s) must be one of the following: everysec, always, no"
			}},
		{name: "bind", get: func(s *Server) string { h, _ := splitAddr(s.b.Settings().RESPAddr); return h }},
		{name: "busy-reply-threshold", get: func(s *Server) string { return strconv.FormatInt(s.scripts.busyMillis.Load(), 10) },
			set: intRange(0, 9223372036854775807, func(s *Server, n int64) { s.scripts.busyMillis.Store(n) })},
		{name: "cluster-enabled", get: func(*Server) string { return "no" }},
		{name: "databases", get: func(*Server) string { return "1" }},
		{name: "maxclients", get: func(s *Server) string { return strconv.FormatInt(s.maxClients.Load(), 10) },
			set: intRange(1, 4294967295, func(s *Server, n int64) { s.maxClients.Store(n) })},
		{name: "maxmemory", get: func(*Server) string { return "0" },
			set: func(_ *Server, v string) (func(), string) {
				n, ok := parseMemory(v)
				if !ok {
					return nil, "argument must be a memory value"
				}
				if n != 0 {
					return nil, "replicant never evicts keys: maxmemory must be 0 (--max-request-buffer bounds request memory)"
				}
				return func() {}, ""
			}},
		{name: "maxmemory-policy", get: func(*Server) string { return "noeviction" },
			set: func(_ *Server, v string) (func(), string) {
				switch strings.ToLower(v) {
				case "noeviction":
					return func() {}, ""
				case "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random":
					return nil, noEviction
				}
				return nil, "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
			}},
		{name: "notify-keyspace-events", get: func(*Server) string { return "" },
			set: only("", "keyspace notifications are not supported (there is no PUBLISH/SUBSCRIBE): only \"\" is accepted")},
		{name: "port", get: func(s *Server) string { _, p := splitAddr(s.b.Settings().RESPAddr); return strconv.Itoa(p) }},
		{name: "proto-max-bulk-len", get: func(s *Server) string { return strconv.Itoa(2*s.b.Settings().MaxValueSize + 1<<20) }},
		{name: "replica-read-only", get: func(*Server) string { return "yes" },
			set: only("yes", "replicas apply only their leader's log: only yes is supported")},
		{name: "requirepass", get: func(s *Server) string { return s.b.Settings().RequirePass },
			set: func(*Server, string) (func(), string) {
				return nil, "the password is set with --requirepass (the HTTP API shares it): it cannot change at run time"
			}},
		{name: "save", get: func(*Server) string { return "" },
			set: func(_ *Server, v string) (func(), string) {
				f := strings.Fields(v)
				if len(f)%2 != 0 {
					return nil, "Invalid save parameters"
				}
				for _, x := range f {
					if n, err := strconv.ParseInt(x, 10, 64); err != nil || n < 0 {
						return nil, "Invalid save parameters"
					}
				}
				if len(f) > 0 {
					return nil, "replicant keeps no RDB snapshots (every write is in its fsynced log): only \"\" is supported"
				}
				return func() {}, ""
			}},
		{name: "slowlog-log-slower-than", get: func(s *Server) string { return strconv.FormatInt(s.slowlog.threshold.Load(), 10) },
			set: intRange(-1, 9223372036854775807, func(s *Server, n int64) { s.slowlog.threshold.Store(n) })},
		{name: "slowlog-max-len", get: func(s *Server) string { return strconv.FormatInt(s.slowlog.maxLen.Load(), 10) },
			set: intRange(0, 9223372036854775807, func(s *Server, n int64) { s.slowlog.setMaxLen(n) })},
		{name: "timeout", get: func(s *Server) string {
			return strconv.FormatInt(s.idleTimeout.Load()/int64(time.Second), 10)
		}, set: intRange(0, 2147483647, func(s *Server, n int64) { s.idleTimeout.Store(n * int64(time.Second)) })},
	}
	// Redis 7 still answers the old name.
	ro := ps[slices.IndexFunc(ps, func(p configParam) bool { return p.name == "replica-read-only" })]
	ro.name = "slave-read-only"
	ps = append(ps, ro)
	busy := ps[slices.IndexFunc(ps, func(p configParam) bool { return p.name == "busy-reply-threshold" })]
	busy.name = "lua-time-limit"
	ps = append(ps, busy)
	slices.SortFunc(ps, func(a, b configParam) int { return strings.Compare(a.name, b.name) })
	return ps
}

// parseMemory parses a Redis memory value: bytes with an optional unit
// (k, kb, m, mb, g, gb, case-insensitive; k is 1000, kb 1024).
func parseMemory(v string) (int64, bool) {
	l := strings.ToLower(v)
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1000}, {"m", 1000 * 1000}, {"g", 1000 * 1000 * 1000}, {"b", 1}} {
		if strings.HasSuffix(l, u.suffix) {
			l, mul = strings.TrimSuffix(l, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(l, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mul {
		return 0, false
	}
	return n * mul, true
}

var configHelp = []string{
	"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GET <pattern> [<pattern> ...]",
	"    Return parameters matching the glob-like <pattern> and their values.",
	"SET <directive> <value> [<directive> <value> ...]",
	"    Set the configuration <directive> to <value> (until the server restarts).",
	"RESETSTAT",
	"    Reset statistics reported by the INFO command.",
	"REWRITE",
	"    Refused: replicant does not rewrite its configuration file.",
	"HELP",
	"    Print this help.",
}

// cmdConfig serves CONFIG GET, SET, RESETSTAT, REWRITE and HELP.
func (s *Server) cmdConfig(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	arity := map[string]int{"get": -3, "set": -4, "resetstat": 2, "rewrite": 2, "help": 2}
	want, ok := arity[sub]
	if !ok {
		c.errorf("ERR unknown subcommand '%.128s'. Try CONFIG HELP.", args[1])
		return
	}
	if (want > 0 && len(args) != want) || (want < 0 && len(args) < -want) {
		c.arityErr("config|" + sub)
		return
	}
	c.setLast(c.lastAt, "config|"+sub)
	switch sub {
	case "get":
		s.configGet(c, args[2:])
	case "set":
		s.configSet(c, args[2:])
	case "resetstat":
		s.resetStats()
		c.ok()
	case "rewrite":
		if s.cfg.ConfigFile == "" {
			c.err("ERR The server is running without a config file")
			return
		}
		c.errorf("ERR CONFIG REWRITE is not supported: replicant does not rewrite %s; settings changed with CONFIG SET last until the server restarts", s.cfg.ConfigFile)
	case "help":
		c.array(len(configHelp))
		for _, l := range configHelp {
			c.simple(l)
		}
	}
}

// configGet answers each pattern in turn, as Redis 7 does: a name without
// glob characters is echoed as typed, a pattern lists its matches (here
// by name; Redis's order is its hash table's); each parameter once.
func (s *Server) configGet(c *client, patterns [][]byte) {
	params := configParams()
	var out [][2]string
	seen := map[string]bool{}
	for _, pat := range patterns {
		lower := bytesLower(pat)
		if !strings.ContainsAny(string(pat), "*?[") {
			j := slices.IndexFunc(params, func(p configParam) bool { return p.name == string(lower) })
			if j >= 0 && !seen[params[j].name] {
				seen[params[j].name] = true
				out = append(out, [2]string{string(pat), params[j].get(s)})
			}
			continue
		}
		for _, p := range params {
			if !seen[p.name] && globMatch(lower, []byte(p.name)) {
				seen[p.name] = true
				out = append(out, [2]string{p.name, p.get(s)})
			}
		}
	}
	c.mapHeader(len(out))
	for _, p := range out {
		c.bulkString(p[0])
		c.bulkString(p[1])
	}
}

func bytesLower(b []byte) []byte { return []byte(strings.ToLower(string(b))) }

// configSet checks every pair first and changes nothing unless all are
// valid, as Redis 7 does.
func (s *Server) configSet(c *client, kv [][]byte) {
	if len(kv)%2 != 0 {
		c.err(msgSyntax)
		return
	}
	params := configParams()
	// Names first (unknown, immutable, repeated), then values, as Redis
	// 7 checks them; the first problem found is answered.
	sets := make([]configParam, 0, len(kv)/2)
	seen := map[string]bool{}
	for i := 0; i < len(kv); i += 2 {
		name := strings.ToLower(string(kv[i]))
		j := slices.IndexFunc(params, func(p configParam) bool { return p.name == name })
		if j < 0 {
			c.errorf("ERR Unknown option or number of arguments for CONFIG SET - '%s'", kv[i])
			return
		}
		p := params[j]
		canonical := p.name
		switch canonical {
		case "slave-read-only":
			canonical = "replica-read-only"
		case "lua-time-limit":
			canonical = "busy-reply-threshold"
		}
		switch {
		case p.set == nil:
			c.errorf("ERR CONFIG SET failed (possibly related to argument '%s') - can't set immutable config", kv[i])
			return
		case seen[canonical]:
			c.errorf("ERR CONFIG SET failed (possibly related to argument '%s') - duplicate parameter", kv[i])
			return
		}
		seen[canonical] = true
		sets = append(sets, p)
	}
	applies := make([]func(), 0, len(sets))
	for i, p := range sets {
		apply, why := p.set(s, string(kv[2*i+1]))
		if why != "" {
			c.errorf("ERR CONFIG SET failed (possibly related to argument '%s') - %s", kv[2*i], why)
			return
		}
		applies = append(applies, apply)
	}
	for _, a := range applies {
		a()
	}
	c.ok()
}

// resetStats is CONFIG RESETSTAT: the counters INFO stats, commandstats
// and errorstats show, and the memory peak.
func (s *Server) resetStats() {
	s.stats.reset()
	s.connsTotal.Store(0)
	s.cmdsTotal.Store(0)
	s.rejectedConns.Store(0)
	s.budgetRefusals.Store(0)
	s.pipelined.Store(0)
	s.memPeak.Store(0)
}
