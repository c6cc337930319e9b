package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

type benchFlags struct {
	addr      string
	clients   int
	duration  time.Duration
	valueSize int
	keys      int
	op        string
	wait      int
	password  string
	tls       clientTLSFlags
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency over the Redis protocol (replicant or any Redis)",
		Long: `bench runs --clients connections, each sending one command at a time for
--duration, and prints throughput and latency percentiles. --wait N sends
WAIT N 0 after each SET (a client-side semi-synchronous write on Redis).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:6381", "RESP address")
	fl.IntVar(&f.clients, "clients", 16, "concurrent connections")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to run")
	fl.IntVar(&f.valueSize, "value-size", 64, "bytes per value")
	fl.IntVar(&f.keys, "keys", 100000, "key space size")
	fl.StringVar(&f.op, "op", "set", "set | get")
	fl.IntVar(&f.wait, "wait", 0, "send WAIT N 0 after each SET")
	fl.StringVar(&f.password, "password", "", "AUTH password")
	f.tls.register(cmd)
	return cmd
}

func runBench(ctx context.Context, cmd *cobra.Command, f benchFlags) error {
	if f.clients < 1 || f.valueSize < 0 || f.keys < 1 || f.duration <= 0 {
		return fmt.Errorf("--clients, --keys and --duration must be positive")
	}
	if f.op != "set" && f.op != "get" {
		return fmt.Errorf("--op %q: want set or get", f.op)
	}
	tlsCfg, err := f.tls.config()
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		// crypto/tls verifies the name it is given; go-redis gives none.
		host, _, err := net.SplitHostPort(f.addr)
		if err != nil {
			return fmt.Errorf("--addr: %w", err)
		}
		tlsCfg.ServerName = host
	}
	// go-redis logs every failed dial; bench reports errors itself.
	redis.SetLogger(quietLogger{})
	value := make([]byte, f.valueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	ctx, cancel := context.WithTimeout(ctx, f.duration)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for c := range f.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: f.addr, Password: f.password, PoolSize: 1, MaxRetries: -1, TLSConfig: tlsCfg})
			defer rdb.Close()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			var mine []time.Duration
			for ctx.Err() == nil {
				key := fmt.Sprintf("bench:%d", rng.IntN(f.keys))
				t0 := time.Now()
				var err error
				if f.op == "set" {
					err = rdb.Set(context.Background(), key, value, 0).Err()
					if err == nil && f.wait > 0 {
						err = rdb.Wait(context.Background(), f.wait, 0).Err()
					}
				} else if err = rdb.Get(context.Background(), key).Err(); err == redis.Nil {
					err = nil
				}
				if err != nil {
					mu.Lock()
					errs++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if len(lat) == 0 {
		return fmt.Errorf("no operation succeeded (%d errors; first: %v)", errs, firstErr)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %d clients, %d-byte values, %s: %.0f ops/s  p50 %.3f ms  p99 %.3f ms  max %.3f ms  errors %d\n",
		f.op, f.clients, f.valueSize, el.Round(time.Millisecond), float64(len(lat))/el.Seconds(), pct(0.50), pct(0.99), pct(1), errs)
	if firstErr != nil {
		fmt.Fprintf(cmd.OutOrStdout(), "first error: %v\n", firstErr)
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
