package resp

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// infoSections are INFO's sections in Redis's order, and whether the
// default set (INFO, INFO default) includes each; all and everything
// include every one.
var infoSections = []struct {
	name    string
	dflt    bool
	section func(s *Server, c *client, w *infoWriter)
}{
	{"server", true, (*Server).infoServer},
	{"clients", true, (*Server).infoClients},
	{"memory", true, (*Server).infoMemory},
	{"persistence", true, (*Server).infoPersistence},
	{"stats", true, (*Server).infoStats},
	{"replication", true, func(s *Server, _ *client, w *infoWriter) { s.infoReplication(w.kv, s.b.Status()) }},
	{"cpu", true, (*Server).infoCPU},
	{"modules", true, func(*Server, *client, *infoWriter) {}},
	{"commandstats", false, func(s *Server, _ *client, w *infoWriter) { w.lines(s.stats.commandLines()) }},
	{"errorstats", true, func(s *Server, _ *client, w *infoWriter) { w.lines(s.stats.errorLines()) }},
	{"cluster", true, func(_ *Server, _ *client, w *infoWriter) { w.kv("cluster_enabled", 0) }},
	{"keyspace", true, (*Server).infoKeyspace},
}

// infoTitles are the section headers where Redis does not just capitalise.
var infoTitles = map[string]string{"cpu": "CPU"}

type infoWriter struct{ b strings.Builder }

func (w *infoWriter) kv(k string, v any) { fmt.Fprintf(&w.b, "%s:%v\r\n", k, v) }

func (w *infoWriter) lines(ls []string) {
	for _, l := range ls {
		w.b.WriteString(l)
		w.b.WriteString("\r\n")
	}
}

func (s *Server) cmdInfo(c *client, args [][]byte) {
	want := map[string]bool{}
	pick := func(all bool) {
		for _, sec := range infoSections {
			if all || sec.dflt {
				want[sec.name] = true
			}
		}
	}
	if len(args) == 1 {
		pick(false)
	}
	for _, a := range args[1:] {
		switch sec := strings.ToLower(string(a)); sec {
		case "default":
			pick(false)
		case "all", "everything":
			pick(true)
		default:
			want[sec] = true // unknown sections add nothing, as in Redis
		}
	}
	var w infoWriter
	for _, sec := range infoSections {
		if !want[sec.name] {
			continue
		}
		if w.b.Len() > 0 {
			w.b.WriteString("\r\n")
		}
		title := infoTitles[sec.name]
		if title == "" {
			title = strings.ToUpper(sec.name[:1]) + sec.name[1:]
		}
		fmt.Fprintf(&w.b, "# %s\r\n", title)
		sec.section(s, c, &w)
	}
	c.verbatim(w.b.String())
}

func (s *Server) infoServer(_ *client, w *infoWriter) {
	st := s.b.Status()
	set := s.b.Settings()
	_, port := splitAddr(set.RESPAddr)
	up := time.Since(s.started)
	exe, _ := os.Executable()
	w.kv("redis_version", redisVersion)
	w.kv("redis_mode", "standalone")
	w.kv("os", runtime.GOOS+" "+runtime.GOARCH)
	w.kv("arch_bits", strconv.IntSize)
	w.kv("multiplexing_api", "go")
	w.kv("go_version", runtime.Version())
	w.kv("process_id", os.Getpid())
	w.kv("run_id", s.runID)
	w.kv("tcp_port", port)
	w.kv("server_time_usec", time.Now().UnixMicro())
	w.kv("uptime_in_seconds", int64(up.Seconds()))
	w.kv("uptime_in_days", int64(up.Hours()/24))
	w.kv("executable", exe)
	w.kv("config_file", s.cfg.ConfigFile)
	w.kv("replicant_id", set.ID)
	w.kv("replicant_mode", st.Mode)
	w.kv("replicant_epoch", st.Epoch)
	w.kv("replicant_sync_policy", st.SyncPolicy)
}

func (s *Server) infoClients(_ *client, w *infoWriter) {
	w.kv("connected_clients", s.clients.Load())
	w.kv("maxclients", s.maxClients.Load()) // 0: no limit
	w.kv("blocked_clients", s.blocked.Load())
	w.kv("tracking_clients", 0) // CLIENT TRACKING is not served
}

// memStats are the runtime/metrics samples INFO memory reads.
var memSamples = []string{
	"/memory/classes/heap/objects:bytes", // live and unswept heap objects
	"/memory/classes/total:bytes",        // everything the Go runtime mapped
	"/gc/heap/goal:bytes",
}

// memNumbers are the memory figures INFO memory and MEMORY report.
type memNumbers struct {
	used, rss, peak, goal, mapped uint64
}

// memory samples the Go runtime and the process and raises the peak.
func (s *Server) memory() memNumbers {
	samples := make([]metrics.Sample, len(memSamples))
	for i, n := range memSamples {
		samples[i].Name = n
	}
	metrics.Read(samples)
	val := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	m := memNumbers{used: val(0), mapped: val(1), goal: val(2)}
	peak := s.memPeak.Load()
	for m.used > peak && !s.memPeak.CompareAndSwap(peak, m.used) {
		peak = s.memPeak.Load()
	}
	m.peak = max(peak, m.used)
	if m.rss = processRSS(); m.rss == 0 {
		m.rss = m.mapped
	}
	return m
}

func (s *Server) infoMemory(_ *client, w *infoWriter) {
	m := s.memory()
	used, rss, peak, total := m.used, m.rss, m.peak, m.mapped
	w.kv("used_memory", used)
	w.kv("used_memory_human", humanBytes(used))
	w.kv("used_memory_rss", rss)
	w.kv("used_memory_rss_human", humanBytes(rss))
	w.kv("used_memory_peak", peak)
	w.kv("used_memory_peak_human", humanBytes(peak))
	w.kv("used_memory_peak_perc", fmt.Sprintf("%.2f%%", 100*float64(used)/float64(max(peak, 1))))
	if sys := systemMemory(); sys > 0 {
		w.kv("total_system_memory", sys)
		w.kv("total_system_memory_human", humanBytes(sys))
	}
	w.kv("maxmemory", 0)
	w.kv("maxmemory_human", "0B")
	w.kv("maxmemory_policy", "noeviction")
	if used > 0 {
		w.kv("mem_fragmentation_ratio", fmt.Sprintf("%.2f", float64(rss)/float64(used)))
	}
	w.kv("mem_allocator", "go-"+runtime.Version())
	w.kv("replicant_go_heap_goal", m.goal)
	w.kv("replicant_go_runtime_mapped", total)
	w.kv("replicant_request_buffer_bytes", s.cfg.Budget.InUse())
	w.kv("replicant_request_buffer_capacity", s.cfg.Budget.Capacity())
}

// processRSS is the process's resident set size from /proc (0 where there
// is none).
func processRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// systemMemory is MemTotal from /proc/meminfo (0 where there is none).
func systemMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fs[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// humanBytes formats n as Redis's *_human fields do (919.20K, 11.63M).
func humanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "K", "M", "G", "T", "P"} {
		if f < 1024 || u == "P" {
			if u == "B" {
				return strconv.FormatUint(n, 10) + "B"
			}
			return fmt.Sprintf("%.2f%s", f, u)
		}
		f /= 1024
	}
	return ""
}

// infoPersistence describes replicant's durability in Redis's terms: the
// replication log is an append-only file fsynced before every
// acknowledgement (appendfsync always); there are no RDB snapshots.
func (s *Server) infoPersistence(_ *client, w *infoWriter) {
	st := s.b.Status()
	loading := 0
	if errors.Is(s.b.Ready(), engine.ErrLoading) {
		loading = 1
	}
	w.kv("loading", loading)
	w.kv("async_loading", 0)
	w.kv("rdb_bgsave_in_progress", 0)
	w.kv("rdb_saves", 0)
	w.kv("aof_enabled", 1)
	w.kv("aof_rewrite_in_progress", 0)
	w.kv("aof_rewrites", 0)
	w.kv("replicant_log_first_lsn", st.FirstLSN)
	w.kv("replicant_log_last_lsn", st.LastLSN)
	w.kv("replicant_applied_lsn", st.AppliedLSN)
	w.kv("replicant_commit_lsn", st.CommitLSN)
}

func (s *Server) infoStats(_ *client, w *infoWriter) {
	w.kv("total_connections_received", s.connsTotal.Load())
	w.kv("total_commands_processed", s.cmdsTotal.Load())
	w.kv("rejected_connections", s.rejectedConns.Load())
	w.kv("total_error_replies", s.stats.errorReplies.Load())
	w.kv("evicted_keys", 0)    // replicant never evicts keys
	w.kv("evicted_clients", 0) // nor clients
	w.kv("pubsub_channels", 0)
	w.kv("pubsub_patterns", 0)
	w.kv("replicant_pipelined_sets", s.pipelined.Load())
	w.kv("replicant_request_buffer_refusals", s.budgetRefusals.Load())
	w.kv("scan_cursors", s.cursors.len())
}

func (s *Server) infoCPU(_ *client, w *infoWriter) {
	sys, user, csys, cuser, ok := cpuTimes()
	if !ok {
		return
	}
	w.kv("used_cpu_sys", fmt.Sprintf("%.6f", sys.Seconds()))
	w.kv("used_cpu_user", fmt.Sprintf("%.6f", user.Seconds()))
	w.kv("used_cpu_sys_children", fmt.Sprintf("%.6f", csys.Seconds()))
	w.kv("used_cpu_user_children", fmt.Sprintf("%.6f", cuser.Seconds()))
}

// keyCounter is implemented by readers that know their key count without
// visiting the keys (single-leader mode: storage keeps it).
type keyCounter interface {
	KeyCount() (keys, expires int64, err error)
}

// dbSize counts r's keys: in O(1) where the reader keeps a count, by a
// scan otherwise (multi-leader and leaderless modes, whose stored records
// include tombstones and reserved keys).
func dbSize(r engine.Reader) (keys, expires int64, err error) {
	if kc, ok := r.(keyCounter); ok {
		return kc.KeyCount()
	}
	return countKeys(r)
}

func (s *Server) infoKeyspace(c *client, w *infoWriter) {
	// Local state, whatever the connection's consistency: INFO must
	// answer on any node.
	var keys, expires int64
	r, err := s.b.Read(c.ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err == nil {
		keys, expires, err = dbSize(r)
	}
	if err != nil {
		s.log.Debug("INFO keyspace", "err", err)
	}
	if keys > 0 {
		// avg_ttl is not estimated (Redis samples it): 0, Redis's value
		// when it has no estimate.
		w.kv("db0", fmt.Sprintf("keys=%d,expires=%d,avg_ttl=0", keys, expires))
	}
}
