package resp

import (
	"fmt"
	"math/bits"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/replicant-db/replicant/internal/engine"
)

// Redis's string object sizes (64-bit): a robj header, a dict entry per
// key, and the sds header by string length. MEMORY USAGE adds them up the
// way Redis does for a value written by SET, rounded to jemalloc's size
// classes, so tools that compare numbers across servers see Redis-like
// figures; replicant's own storage (versions in an LSM) costs differently.
const (
	robjSize        = 16
	dictEntrySize   = 24
	embstrSizeLimit = 44
	sharedIntegers  = 10000
	sharedRefcount  = 2147483647
)

// redisInt reports whether v is stored by Redis as an integer: the
// canonical decimal form of an int64 (no sign on 0, no leading zeros).
func redisInt(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(v) {
		return 0, false
	}
	return n, true
}

// stringEncoding is OBJECT ENCODING of a string value, as a SET of it
// would leave it in Redis.
func stringEncoding(v []byte) string {
	if _, ok := redisInt(v); ok {
		return "int"
	}
	if len(v) <= embstrSizeLimit {
		return "embstr"
	}
	return "raw"
}

// sdsHeader is the header size of an sds string of length n.
func sdsHeader(n int, short bool) int {
	switch {
	case short && n < 32:
		return 1
	case n < 1<<8:
		return 3
	case n < 1<<16:
		return 5
	case n < 1<<32:
		return 9
	}
	return 17
}

// jemallocSize rounds an allocation up to jemalloc's size class: 8, then
// steps of 16 up to 128, then four classes per doubling.
func jemallocSize(n int) int {
	switch {
	case n <= 8:
		return 8
	case n <= 128:
		return (n + 15) / 16 * 16
	}
	step := 1 << (bits.Len(uint(n-1)) - 3)
	return (n + step - 1) / step * step
}

// memoryUsage is MEMORY USAGE of a string key: the key's sds, its dict
// entry and the value object.
func memoryUsage(key, val []byte) int64 {
	size := jemallocSize(sdsHeader(len(key), true)+len(key)+1) + dictEntrySize
	switch stringEncoding(val) {
	case "int":
		size += robjSize
	case "embstr":
		size += jemallocSize(robjSize + 3 + len(val) + 1)
	default:
		size += robjSize + jemallocSize(sdsHeader(len(val), false)+len(val)+1)
	}
	return int64(size)
}

// lookup reads key for an introspection command; ok is false when the
// reply (null or an error) was written.
func (c *client) lookup(key []byte) (engine.Reader, engine.Version, bool) {
	r, ok := c.read()
	if !ok {
		return nil, engine.Version{}, false
	}
	v, found, err := r.Get(key)
	if err != nil {
		c.backendErr(err)
		return nil, engine.Version{}, false
	}
	if !found {
		c.null()
		return nil, engine.Version{}, false
	}
	return r, v, true
}

func (s *Server) cmdObject(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	want, ok := map[string]int{"encoding": 3, "freq": 3, "idletime": 3, "refcount": 3, "help": 2}[sub]
	if !ok {
		c.errorf("ERR unknown subcommand '%.128s'. Try OBJECT HELP.", args[1])
		return
	}
	if len(args) != want {
		c.arityErr("object|" + sub)
		return
	}
	c.setLast(c.lastAt, "object|"+sub)
	if sub == "help" {
		help := []string{
			"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ENCODING <key>", "    Return the kind of internal representation used to store the value of <key>.",
			"FREQ <key>", "    Refused: no LFU policy (replicant never evicts).",
			"IDLETIME <key>", "    Refused: replicant keeps no access times.",
			"REFCOUNT <key>", "    Return the number of references of the value of <key>.",
			"HELP", "    Print this help.",
		}
		c.array(len(help))
		for _, l := range help {
			c.simple(l)
		}
		return
	}
	r, v, ok := c.lookup(args[2])
	if !ok {
		return
	}
	switch sub {
	case "encoding":
		if v.Type != engine.TypeString {
			enc, err := collectionEncoding(r, args[2], v.Type)
			if err != nil {
				c.backendErr(err)
				return
			}
			c.bulkString(enc)
			return
		}
		c.bulkString(stringEncoding(v.Value))
	case "refcount":
		if n, ok := redisInt(v.Value); ok && n >= 0 && n < sharedIntegers {
			c.int(sharedRefcount) // Redis's shared integer objects
			return
		}
		c.int(1)
	case "freq":
		// Redis's own answer when the policy is not LFU, which in
		// replicant it never is.
		c.err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	case "idletime":
		// Redis tracks the last access in memory; replicant would have to
		// write every read into a replicated store to do the same.
		c.err("ERR idle time is not tracked: replicant keeps no access times (reads do not write)")
	}
}

func (s *Server) cmdMemory(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	want, ok := map[string]int{"usage": -3, "stats": 2, "doctor": 2, "malloc-stats": 2, "purge": 2, "help": 2}[sub]
	if !ok {
		c.errorf("ERR unknown subcommand '%.128s'. Try MEMORY HELP.", args[1])
		return
	}
	if (want > 0 && len(args) != want) || (want < 0 && len(args) < -want) {
		c.arityErr("memory|" + sub)
		return
	}
	c.setLast(c.lastAt, "memory|"+sub)
	switch sub {
	case "usage":
		// SAMPLES: how many elements of a collection are measured (the
		// rest estimated from their mean), 0 for all; Redis's default 5.
		samples := int64(5)
		for i := 3; i < len(args); i += 2 {
			if !strings.EqualFold(string(args[i]), "samples") || i+1 >= len(args) {
				c.err(msgSyntax)
				return
			}
			n, ok := parseInt(args[i+1])
			if !ok {
				c.err(msgNotInt)
				return
			}
			samples = n
		}
		r, v, ok := c.lookup(args[2])
		if !ok {
			return
		}
		if v.Type != engine.TypeString {
			n, err := collectionUsage(r, args[2], v.Type, samples)
			if err != nil {
				c.backendErr(err)
				return
			}
			c.int(n)
			return
		}
		c.int(memoryUsage(args[2], v.Value))
	case "stats":
		s.memoryStats(c)
	case "doctor":
		m := s.memory()
		c.verbatim(fmt.Sprintf("replicant keeps its data on disk (Pebble) and in its block cache; this process uses %s of Go heap (peak seen %s) and %s resident. Nothing is ever evicted: bound request memory with --max-request-buffer.\n",
			humanBytes(m.used), humanBytes(m.peak), humanBytes(m.rss)))
	case "malloc-stats":
		c.bulkString("Stats not supported for the current allocator")
	case "purge":
		debug.FreeOSMemory() // give freed heap back, as a jemalloc purge does
		c.ok()
	case "help":
		help := []string{
			"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"DOCTOR", "    Return memory problems reports.",
			"MALLOC-STATS", "    Return internal statistics report from the memory allocator.",
			"PURGE", "    Return freed memory to the operating system.",
			"STATS", "    Return information about the memory usage of the server.",
			"USAGE <key> [SAMPLES <count>]", "    Return memory in bytes used by <key> and its value (Redis's estimate for a string).",
			"HELP", "    Print this help.",
		}
		c.array(len(help))
		for _, l := range help {
			c.simple(l)
		}
	}
}

// memoryStats is MEMORY STATS with the figures replicant has (a subset of
// Redis's: no per-structure overheads).
func (s *Server) memoryStats(c *client) {
	m := s.memory()
	used, rss, peak := m.used, m.rss, m.peak
	var keys int64
	if r, err := s.b.Read(c.ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{}); err == nil {
		keys, _, _ = dbSize(r)
	}
	c.mapHeader(6)
	c.bulkString("peak.allocated")
	c.int(int64(peak))
	c.bulkString("total.allocated")
	c.int(int64(used))
	c.bulkString("keys.count")
	c.int(keys)
	c.bulkString("keys.bytes-per-key")
	c.int(int64(used) / max(keys, 1))
	c.bulkString("fragmentation")
	c.double(float64(rss) / float64(max(used, 1)))
	c.bulkString("fragmentation.bytes")
	c.int(int64(rss) - int64(used))
}
