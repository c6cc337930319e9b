// Command loadgen is a closed-loop write load generator for the cluster
// benchmarks in bench/: N concurrent clients, each with its own connection,
// each sending one write and waiting for its reply before the next.
//
//	loadgen -target resp -addrs 127.0.0.1:6381 -clients 64 -duration 10s
//	loadgen -target resp -addrs 127.0.0.1:6379 -clients 64 -wait 1   # SET then WAIT 1 0
//	loadgen -target etcd -addrs 127.0.0.1:2379,127.0.0.1:2381 -clients 64
//	loadgen -target resp -addrs 127.0.0.1:6381 -seq -total 65536 -value-size 16384  # bulk load
//
// It prints one line (JSON, or CSV with -format csv; -csv-header prints the
// header) with throughput and latency percentiles computed from every
// sample, sorted. It is a separate Go module so that the etcd client stays
// out of replicant's own dependencies.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type config struct {
	target    string
	addrs     []string
	clients   int
	conns     int
	duration  time.Duration
	valueSize int
	wait      int
	keyspace  int
	seq       bool
	total     int64
	prefix    string
	label     string
	format    string
	timeout   time.Duration
	lagURL    string
	lagEvery  time.Duration
	rate      float64
	pipeline  int
	spread    bool   // resp: client i connects to addrs[i % len(addrs)]
	initCmd   string // resp: a command each connection sends once first
	op        string // resp: set | get
}

// writer sends one write and returns when it is acknowledged.
type writer interface {
	write(ctx context.Context, key string, val []byte) error
	close()
}

type result struct {
	Label     string  `json:"label,omitempty"`
	Target    string  `json:"target"`
	Clients   int     `json:"clients"`
	Wait      int     `json:"wait"`
	ValueSize int     `json:"value_size"`
	Seconds   float64 `json:"seconds"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_s"`
	MBPerSec  float64 `json:"mb_per_s"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	Max       float64 `json:"max_ms"`
	// Follower lag sampled from the leader's /v1/status during the run
	// (-lag-url): per sample the worst member, then percentiles over samples.
	LagSamples    int     `json:"lag_samples,omitempty"`
	LagSecP99     float64 `json:"lag_seconds_p99"`
	LagSecMax     float64 `json:"lag_seconds_max"`
	LagEntriesP99 float64 `json:"lag_entries_p99"`
	LagEntriesMax float64 `json:"lag_entries_max"`
	FirstErr      string  `json:"first_error,omitempty"`
}

const csvHeader = "label,target,clients,wait,value_size,seconds,ops,errors,ops_per_s,mb_per_s,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,lag_samples,lag_seconds_p99,lag_seconds_max,lag_entries_p99,lag_entries_max"

func (r result) csv() string {
	return fmt.Sprintf("%s,%s,%d,%d,%d,%.2f,%d,%d,%.0f,%.2f,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%.3f,%.3f,%.0f,%.0f",
		r.Label, r.Target, r.Clients, r.Wait, r.ValueSize, r.Seconds, r.Ops, r.Errors,
		r.OpsPerSec, r.MBPerSec, r.P50, r.P90, r.P99, r.P999, r.Max,
		r.LagSamples, r.LagSecP99, r.LagSecMax, r.LagEntriesP99, r.LagEntriesMax)
}

func main() {
	var c config
	var addrs string
	var header bool
	flag.StringVar(&c.target, "target", "resp", "resp (Redis protocol: replicant or Redis) | etcd")
	flag.StringVar(&addrs, "addrs", "127.0.0.1:6381", "comma-separated host:port list; resp writes to the first, etcd uses all as endpoints")
	flag.IntVar(&c.clients, "clients", 16, "concurrent clients (each waits for its reply before sending again)")
	flag.IntVar(&c.conns, "conns", 0, "etcd: client connections shared by the clients (default min(clients, 64)); resp: always one per client")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run")
	flag.IntVar(&c.valueSize, "value-size", 64, "value size in bytes (random, incompressible)")
	flag.IntVar(&c.wait, "wait", 0, "resp: send WAIT N 0 after every SET (Redis semi-sync emulation); the latency covers both")
	flag.IntVar(&c.keyspace, "keyspace", 1000000, "random keys are drawn from this many")
	flag.BoolVar(&c.seq, "seq", false, "write keys prefix000000000000, prefix000000000001, ... once each (bulk load) instead of random keys")
	flag.Int64Var(&c.total, "total", 0, "stop after this many writes in all (0: only -duration limits)")
	flag.StringVar(&c.prefix, "prefix", "key:", "key prefix")
	flag.StringVar(&c.label, "label", "", "free text copied to the output line")
	flag.StringVar(&c.format, "format", "json", "json | csv")
	flag.BoolVar(&header, "csv-header", false, "print the CSV header line and exit")
	flag.DurationVar(&c.timeout, "op-timeout", 30*time.Second, "timeout of one write")
	flag.StringVar(&c.lagURL, "lag-url", "", "replicant leader status URL (http://HOST:PORT/v1/status) to sample follower lag from during the run")
	flag.DurationVar(&c.lagEvery, "lag-every", 100*time.Millisecond, "lag sampling interval")
	flag.IntVar(&c.pipeline, "pipeline", 1, "resp: writes each client sends per round trip (a pipeline; latency is the round trip's, counted once per write)")
	flag.Float64Var(&c.rate, "rate", 0, "total writes per second to aim for, spread evenly over the clients (0: as fast as replies come)")
	flag.BoolVar(&c.spread, "spread", false, "resp: spread the clients over every address (leaderless, multi-leader) instead of the first")
	flag.StringVar(&c.initCmd, "init", "", "resp: a command every connection sends once before the load, e.g. 'REPLICANT.QUORUM 2 2'")
	flag.StringVar(&c.op, "op", "set", "resp: set | get (GET of random keys; a missing key counts as done)")
	flag.Parse()
	if header {
		fmt.Println(csvHeader)
		return
	}
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.addrs = append(c.addrs, a)
		}
	}
	if c.op != "set" && c.op != "get" {
		fmt.Fprintf(os.Stderr, "loadgen: -op %q: want set or get\n", c.op)
		os.Exit(2)
	}
	if len(c.addrs) == 0 || c.clients < 1 || c.valueSize < 0 || c.keyspace < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: need -addrs, -clients >= 1, -value-size >= 0, -keyspace >= 1")
		os.Exit(2)
	}
	if c.conns <= 0 {
		c.conns = min(c.clients, 64)
	}
	r, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if c.format == "csv" {
		fmt.Println(r.csv())
	} else {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	if r.Ops == 0 {
		os.Exit(1)
	}
}

func run(c config) (result, error) {
	writers, err := connect(c)
	if err != nil {
		return result{}, err
	}
	defer func() {
		for _, w := range writers {
			w.close()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), c.duration)
	defer cancel()
	var (
		next     atomic.Int64 // sequence number of the next write (-seq, -total)
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		samples  = make([][]time.Duration, c.clients)
	)
	var lagDone chan lagStats
	if c.lagURL != "" {
		lagDone = make(chan lagStats, 1)
		go func() { lagDone <- sampleLag(ctx, c.lagURL, c.lagEvery) }()
	}
	start := time.Now()
	for i := range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := writers[i%len(writers)]
			val := make([]byte, c.valueSize)
			rnd := newRand(uint64(i)*0x9E3779B97F4A7C15 + uint64(start.UnixNano()))
			lat := make([]time.Duration, 0, 4096)
			// -rate: each client sends on its own schedule, offset from the
			// others, and waits when it is ahead of it (never bursts to
			// catch up: a slow reply just delays the schedule).
			var interval time.Duration
			due := start
			if c.rate > 0 {
				interval = time.Duration(float64(c.clients) / c.rate * float64(time.Second))
				due = start.Add(interval * time.Duration(i) / time.Duration(c.clients))
			}
			batch := max(1, c.pipeline)
			pw, pipelining := w.(*respWriter)
			pipelining = pipelining && batch > 1
			for pipelining && ctx.Err() == nil {
				n := next.Add(int64(batch)) - int64(batch)
				if c.total > 0 && n >= c.total {
					break
				}
				m := batch
				if c.total > 0 && n+int64(m) > c.total {
					m = int(c.total - n)
				}
				keys := make([]string, m)
				for j := range keys {
					if c.seq {
						keys[j] = fmt.Sprintf("%s%012d", c.prefix, n+int64(j))
					} else {
						keys[j] = fmt.Sprintf("%s%012d", c.prefix, rnd.next()%uint64(c.keyspace))
					}
				}
				_, _ = rand.Read(val)
				octx, ocancel := context.WithTimeout(context.Background(), c.timeout)
				t0 := time.Now()
				err := pw.writeMany(octx, keys, val)
				d := time.Since(t0)
				ocancel()
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					if c.seq {
						cancel()
					}
					time.Sleep(time.Millisecond)
					continue
				}
				for range m {
					lat = append(lat, d)
				}
			}
			for !pipelining && ctx.Err() == nil {
				if interval > 0 {
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					if due = due.Add(interval); due.Before(time.Now()) {
						due = time.Now()
					}
				}
				n := next.Add(1) - 1
				if c.total > 0 && n >= c.total {
					break
				}
				var key string
				if c.seq {
					key = fmt.Sprintf("%s%012d", c.prefix, n)
				} else {
					key = fmt.Sprintf("%s%012d", c.prefix, rnd.next()%uint64(c.keyspace))
				}
				_, _ = rand.Read(val)
				octx, ocancel := context.WithTimeout(context.Background(), c.timeout)
				t0 := time.Now()
				err := w.write(octx, key, val)
				d := time.Since(t0)
				ocancel()
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					if c.seq { // a load must not leave holes silently: stop
						cancel()
					}
					time.Sleep(time.Millisecond)
					continue
				}
				lat = append(lat, d)
			}
			samples[i] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := slices.Concat(samples...)
	slices.Sort(all)
	r := result{
		Label: c.label, Target: c.target, Clients: c.clients, Wait: c.wait, ValueSize: c.valueSize,
		Seconds: elapsed.Seconds(), Ops: int64(len(all)), Errors: errs.Load(),
	}
	r.OpsPerSec = float64(r.Ops) / r.Seconds
	r.MBPerSec = r.OpsPerSec * float64(c.valueSize) / 1e6
	if len(all) > 0 {
		r.P50, r.P90, r.P99, r.P999 = pct(all, 0.50), pct(all, 0.90), pct(all, 0.99), pct(all, 0.999)
		r.Max = ms(all[len(all)-1])
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstErr = s
	}
	if lagDone != nil {
		cancel()
		l := <-lagDone
		r.LagSamples = len(l.secs)
		if len(l.secs) > 0 {
			r.LagSecP99, r.LagSecMax = pctF(l.secs, 0.99), l.secs[len(l.secs)-1]
			r.LagEntriesP99, r.LagEntriesMax = pctF(l.entries, 0.99), l.entries[len(l.entries)-1]
		}
		if l.err != "" && r.FirstErr == "" {
			r.FirstErr = "lag sampling: " + l.err
		}
	}
	return r, nil
}

// pct is the nearest-rank percentile of sorted samples, in milliseconds.
func pct(sorted []time.Duration, p float64) float64 {
	i := int(p*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return ms(sorted[i])
}

func pctF(sorted []float64, p float64) float64 {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type lagStats struct {
	secs, entries []float64 // sorted
	err           string
}

// sampleLag polls the leader's status every interval until ctx ends and
// keeps, per sample, the largest lag_seconds and lag_entries over members.
func sampleLag(ctx context.Context, url string, every time.Duration) lagStats {
	var st lagStats
	hc := &http.Client{Timeout: 2 * time.Second}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			slices.Sort(st.secs)
			slices.Sort(st.entries)
			return st
		case <-t.C:
		}
		var s struct {
			Members []struct {
				LagEntries float64 `json:"lag_entries"`
				LagSeconds float64 `json:"lag_seconds"`
			} `json:"members"`
		}
		resp, err := hc.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
		}
		if err != nil {
			if st.err == "" {
				st.err = err.Error()
			}
			continue
		}
		var sec, ent float64
		for _, m := range s.Members {
			sec, ent = max(sec, m.LagSeconds), max(ent, m.LagEntries)
		}
		st.secs, st.entries = append(st.secs, sec), append(st.entries, ent)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func connect(c config) ([]writer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch c.target {
	case "resp":
		ws := make([]writer, 0, c.clients)
		for i := range c.clients {
			addr := c.addrs[0]
			if c.spread {
				addr = c.addrs[i%len(c.addrs)]
			}
			w, err := newRESP(ctx, addr, c)
			if err != nil {
				for _, w := range ws {
					w.close()
				}
				return nil, err
			}
			ws = append(ws, w)
		}
		return ws, nil
	case "etcd":
		ws := make([]writer, 0, c.conns)
		for range c.conns {
			cli, err := clientv3.New(clientv3.Config{Endpoints: c.addrs, DialTimeout: 5 * time.Second})
			if err != nil {
				for _, w := range ws {
					w.close()
				}
				return nil, err
			}
			ws = append(ws, etcdWriter{cli})
		}
		// Fail fast when the cluster is not there.
		if _, err := ws[0].(etcdWriter).cli.Get(ctx, "loadgen-ping"); err != nil {
			for _, w := range ws {
				w.close()
			}
			return nil, fmt.Errorf("etcd %v: %w", c.addrs, err)
		}
		return ws, nil
	}
	return nil, fmt.Errorf("unknown -target %q (resp | etcd)", c.target)
}

// respWriter is one dedicated connection, so that WAIT follows its own SET.
type respWriter struct {
	rdb  *redis.Client
	conn *redis.Conn
	wait int
	get  bool
}

func newRESP(ctx context.Context, addr string, c config) (*respWriter, error) {
	rdb := redis.NewClient(&redis.Options{
		Addr: addr, PoolSize: 1, MaxRetries: -1, Protocol: 2,
		ReadTimeout: -1, WriteTimeout: -1, DisableIdentity: true,
	})
	conn := rdb.Conn()
	if err := conn.Ping(ctx).Err(); err != nil {
		conn.Close()
		rdb.Close()
		return nil, fmt.Errorf("resp %s: %w", addr, err)
	}
	if c.initCmd != "" {
		var args []any
		for _, f := range strings.Fields(c.initCmd) {
			args = append(args, f)
		}
		if err := conn.Do(ctx, args...).Err(); err != nil {
			conn.Close()
			rdb.Close()
			return nil, fmt.Errorf("resp %s: -init %q: %w", addr, c.initCmd, err)
		}
	}
	return &respWriter{rdb: rdb, conn: conn, wait: c.wait, get: c.op == "get"}, nil
}

func (w *respWriter) write(ctx context.Context, key string, val []byte) error {
	if w.get {
		if err := w.conn.Get(ctx, key).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
	}
	if err := w.conn.Set(ctx, key, val, 0).Err(); err != nil {
		return err
	}
	if w.wait > 0 {
		n, err := w.conn.Do(ctx, "WAIT", w.wait, 0).Int64()
		if err != nil {
			return err
		}
		if n < int64(w.wait) {
			return errors.New("WAIT returned fewer replicas than asked")
		}
	}
	return nil
}

// writeMany sends one SET per key in one pipeline (one round trip).
func (w *respWriter) writeMany(ctx context.Context, keys []string, val []byte) error {
	cmds, err := w.conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, k, val, 0)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (w *respWriter) close() { w.conn.Close(); w.rdb.Close() }

type etcdWriter struct{ cli *clientv3.Client }

func (w etcdWriter) write(ctx context.Context, key string, val []byte) error {
	_, err := w.cli.Put(ctx, key, string(val))
	return err
}

func (w etcdWriter) close() { w.cli.Close() }

// xorshift64*: a per-client key picker without locks.
type xrand struct{ s uint64 }

func newRand(seed uint64) *xrand {
	if seed == 0 {
		seed = 1
	}
	return &xrand{seed}
}

func (r *xrand) next() uint64 {
	r.s ^= r.s >> 12
	r.s ^= r.s << 25
	r.s ^= r.s >> 27
	return r.s * 2685821657736338717
}
