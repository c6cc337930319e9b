#!/usr/bin/env bash
# Single-node SET throughput and latency: replicant vs Redis with every write
# fsynced before the reply (appendonly yes, appendfsync always), same client
# (redis-benchmark), same machine, one after the other.
#
#   bench/single-node.sh                 # defaults below
#   REPEAT=3 CLIENTS="1 64" bench/single-node.sh
#
# Env: REQUESTS (per run at >1 client, default 100000), REQUESTS_1 (per run at
# 1 client, default 20000: one client is fsync-bound), SIZE (value bytes, 64),
# CLIENTS ("1 16 64"), REPEAT (runs per configuration, 2), OUT (CSV file to
# append every run to; default: none).
#
# Prints one line per run, then a summary with the best run (highest ops/s)
# and the median of the runs for each configuration. Ports: 16381 (RESP),
# 18081 (HTTP), 19081 (peer) for replicant, 16379 for Redis; both run from a
# temporary directory that is deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-100000}
REQUESTS_1=${REQUESTS_1:-20000}
SIZE=${SIZE:-64}
CLIENTS=${CLIENTS:-"1 16 64"}
REPEAT=${REPEAT:-2}
OUT=${OUT:-}
for t in redis-server redis-benchmark redis-cli; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install redis-server redis-tools)"; exit 1; }
done
go build -o bin/replicant ./cmd/replicant
work=$(mktemp -d)
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin/replicant server --id n1 --data "$work/replicant" --resp 127.0.0.1:16381 --http 127.0.0.1:18081 \
  --peer 127.0.0.1:19081 --log-level warn 2>"$work/replicant.log" &
rpid=$!
redis-server --port 16379 --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync always --save '' \
  --daemonize no --logfile "$work/redis.log" &
dpid=$!

# Ready means "accepts a write": a fresh replicant node answers PING before it
# has appointed itself leader (READONLY until then).
for p in 16381 16379; do
  ok=
  for _ in $(seq 300); do
    [ "$(redis-cli -p $p set __bench_ready 1 2>/dev/null)" = OK ] && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "port $p never accepted a write"; tail -n 20 "$work"/*.log; exit 1; }
done

results="$work/results.csv"
# cputicks PID: user+system CPU time of a process, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
run() { # name port clients
  local n=$REQUESTS out pid c0
  [ "$3" -eq 1 ] && n=$REQUESTS_1
  pid=$rpid; [ "$1" = redis ] && pid=$dpid
  c0=$(cputicks $pid)
  if ! out=$(timeout 600 redis-benchmark -p "$2" -t set -n "$n" -c "$3" -d "$SIZE" -r 1000000 --csv 2>&1 | tail -1) ||
     ! echo "$out" | grep -q '^"SET'; then
    echo "$1 $3 clients: redis-benchmark failed: $out" >&2
    return 0
  fi
  # "SET","rps","avg","min","p50","p95","p99","max"; last column: server CPU
  # microseconds per request (user + system, from /proc/PID/stat).
  echo "$out" | tr -d '"' | awk -F, -v n="$1" -v c="$3" -v r="$n" -v cpu="$(( $(cputicks $pid) - c0 ))" -v tck="$tck" \
    '{printf "%s,%d,%d,%.0f,%.3f,%.3f,%.1f\n", n, c, r, $2, $5, $7, cpu/tck*1e6/r}' | tee -a "$results" |
    awk -F, '{printf "%-10s %4d clients  %10.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  server CPU %6.1f us/op\n", $1, $2, $4, $5, $6, $7}'
}
echo "replicant $(git describe --always --dirty 2>/dev/null || echo '(no git)'), $(redis-server --version | cut -d' ' -f1-3), $(date -u +%FT%TZ)"
echo "SET, ${SIZE}-byte values, random keys out of 1M, fsync before every reply; $(nproc) CPUs; $REPEAT runs each"
for i in $(seq "$REPEAT"); do
  echo "--- run $i"
  for c in $CLIENTS; do
    run replicant 16381 "$c"
    run redis 16379 "$c"
  done
done
[ -n "$OUT" ] && cat "$results" >>"$OUT"

echo
echo "summary: best = run with the highest ops/s; median of ops/s over $REPEAT runs"
printf "%-10s %7s %12s %9s %9s %12s %14s\n" system clients best_ops/s p50_ms p99_ms median_ops/s cpu_us/op_best
for c in $CLIENTS; do
  for name in replicant redis; do
    grep "^$name,$c," "$results" | sort -t, -k4,4nr | awk -F, '
      { n++; ops[n]=$4; if (n==1) { b=$4; p50=$5; p99=$6; nm=$1; cl=$2; cpu=$7 } }
      END { if (n==0) exit; # ops sorted descending
            m = (n%2) ? ops[(n+1)/2] : (ops[n/2]+ops[n/2+1])/2
            printf "%-10s %7d %12.0f %9.3f %9.3f %12.0f %14.1f\n", nm, cl, b, p50, p99, m, cpu }'
  done
done
if grep -qiE 'panic|fatal' "$work/replicant.log"; then
  echo "replicant log has errors:"; grep -iE -m20 'panic|fatal' "$work/replicant.log"
fi
