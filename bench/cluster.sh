#!/usr/bin/env bash
# Replicated write throughput and latency on one machine (loopback): a
# 3-node replicant cluster under each commit policy, a 3-member etcd 3.4
# cluster, and Redis with two replicas (appendfsync always, then everysec).
#
#   bench/cluster.sh                                   # everything (~20 min)
#   bench/cluster.sh replicant-first1 etcd             # a subset
#   CLIENTS="64" DURATION=5s REPEAT=1 bench/cluster.sh replicant-async
#
# Systems: replicant-async  replicant-first1 (FIRST 1 (n2,n3), ack durable)
#          replicant-any1 (ANY 1 (*))  replicant-all  etcd
#          redis-always  redis-everysec
# Env: CLIENTS ("1 16 64 256"), DURATION (10s per run), REPEAT (2 runs of
# every configuration), VALUE_SIZE (64), RB_REQUESTS (redis-benchmark -n at
# 50 clients, 100000), OUT (CSV of every run; default
# bench/results/cluster-DATE.csv; columns: `bin/loadgen -csv-header` plus
# server_cpu_us_per_op, the CPU time of all server processes of the system
# under test divided by the writes of that run).
#
# replicant's server logs are kept in ${OUT%.csv}-logs/SYSTEM/.
#
# Every client is closed-loop (sends its next write when the previous one was
# acknowledged), random keys out of 1M, VALUE_SIZE-byte random values.
# replicant: bin/loadgen over RESP to the leader, plus redis-benchmark -c 50;
#   follower lag sampled from the leader's /v1/status every 100ms.
# etcd: bin/loadgen with the etcd v3 client, Put to the leader's endpoint.
# Redis: redis-benchmark -c 50 (writes acknowledged before any replica has
#   them), bin/loadgen without WAIT, and bin/loadgen -wait 1 (SET then
#   WAIT 1 0: semi-synchronous, one replica has *received* the write).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ALL="replicant-async replicant-first1 replicant-any1 replicant-all etcd redis-always redis-everysec"
SYSTEMS=${*:-$ALL}
CLIENTS=${CLIENTS:-"1 16 64 256"}
DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-2}
VALUE_SIZE=${VALUE_SIZE:-64}
RB_REQUESTS=${RB_REQUESTS:-100000}
mkdir -p bench/results
OUT=${OUT:-bench/results/cluster-$(date -u +%Y%m%d-%H%M%S).csv}
dur_s=${DURATION%s}

bench_init
echo "writing every run to $OUT"
# server_ticks: user+system CPU clock ticks of every server process running.
server_ticks() {
  local p t=0
  for p in "${BENCH_PIDS[@]}"; do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}
# cpu_per_op TICKS0 OPS: server CPU microseconds per write since TICKS0.
cpu_per_op() {
  awk -v a="$1" -v b="$(server_ticks)" -v n="$2" -v t="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0) printf "%.1f", (b - a) / t * 1e6 / n; else printf "" }'
}
# loadgen LABEL ARGS...: one run, CSV line appended to $OUT and echoed.
loadgen() {
  local label=$1; shift
  local line c0
  c0=$(server_ticks)
  line=$(timeout $((dur_s + 60)) bin/loadgen -format csv -label "$label" -duration "$DURATION" \
    -value-size "$VALUE_SIZE" "$@") || { echo "loadgen failed for $label: $line" >&2; return 0; }
  line="$line,$(cpu_per_op "$c0" "$(cut -d, -f7 <<<"$line")")"
  echo "$line" >>"$OUT"
  echo "$line   (loadavg $(cut -d' ' -f1 /proc/loadavg))"
}
rb() { # LABEL PORT
  local line c0
  c0=$(server_ticks)
  line=$(rb_csv "$1" 50 "$VALUE_SIZE" -p "$2" -n "$RB_REQUESTS")
  [ -n "$line" ] && line="$line,$(cpu_per_op "$c0" "$RB_REQUESTS")"
  [ -n "$line" ] && { echo "$line" >>"$OUT"; echo "$line   (loadavg $(cut -d' ' -f1 /proc/loadavg))"; }
  return 0
}
warmup() { timeout 60 bin/loadgen -duration 2s -clients 16 -value-size "$VALUE_SIZE" "$@" >/dev/null || true; }

run_replicant() { # LABEL SYNC ACK
  local label=$1 c r
  echo "=== $label: loadavg $(cut -d" " -f1-3 /proc/loadavg); --sync '$2' --ack $3"
  start_replicant_cluster "$2" "$3" || { bench_stop_all; return 0; }
  curl -s "http://$(r_http 1)/v1/status" | jq -c '{role, sync_policy, ack, sync_set, members: [.members[] | {id, healthy, sync}]}'
  warmup -target resp -addrs "$(r_resp 1)"
  for r in $(seq "$REPEAT"); do
    for c in $CLIENTS; do
      loadgen "$label" -target resp -addrs "$(r_resp 1)" -clients "$c" -lag-url "http://$(r_http 1)/v1/status"
    done
    rb "$label" 17381
  done
  bench_stop_all
  check_logs "$label" "$BENCH_WORK"/n[123].log
  # Keep the (small) server logs next to the CSV, for stalls found later.
  mkdir -p "${OUT%.csv}-logs/$label" && cp "$BENCH_WORK"/n[123].log "${OUT%.csv}-logs/$label/"
}

check_logs() { # LABEL FILES...: surface crashes and errors in the summary
  local label=$1; shift
  if grep -hE 'panic|fatal|level=ERROR' "$@" >/dev/null 2>&1; then
    echo "!!! $label: errors in server logs:" >&2
    grep -hE -m5 'panic|fatal|level=ERROR' "$@" >&2 || true
  fi
}

run_etcd() {
  local c r leader
  echo "=== etcd $(etcd --version | head -1 | grep -o '[0-9.]*$'), 3 members; loadavg $(cut -d" " -f1-3 /proc/loadavg)"
  start_etcd_cluster || { bench_stop_all; return 0; }
  leader=$(etcd_leader)
  echo "etcd leader: $leader"
  warmup -target etcd -addrs "$leader"
  for r in $(seq "$REPEAT"); do
    for c in $CLIENTS; do
      loadgen etcd -target etcd -addrs "$leader" -clients "$c"
    done
  done
  bench_stop_all
}

run_redis() { # FSYNC
  local label=redis-$1 c r
  echo "=== Redis $(redis-server --version | grep -o 'v=[^ ]*'), primary + 2 replicas, appendfsync $1; loadavg $(cut -d" " -f1-3 /proc/loadavg)"
  start_redis_cluster "$1" || { bench_stop_all; return 0; }
  warmup -target resp -addrs 127.0.0.1:17791
  for r in $(seq "$REPEAT"); do
    rb "$label" 17791
    for c in $CLIENTS; do
      loadgen "$label" -target resp -addrs 127.0.0.1:17791 -clients "$c"
      loadgen "$label" -target resp -addrs 127.0.0.1:17791 -clients "$c" -wait 1
    done
  done
  bench_stop_all
}

start=$SECONDS
echo "machine: $(nproc) CPUs, loadavg at start: $(cut -d" " -f1-3 /proc/loadavg)"
for s in $SYSTEMS; do
  case $s in
  replicant-async) run_replicant "$s" async durable ;;
  replicant-first1) run_replicant "$s" 'FIRST 1 (n2,n3)' durable ;;
  replicant-any1) run_replicant "$s" 'ANY 1 (*)' durable ;;
  replicant-all) run_replicant "$s" all durable ;;
  etcd) run_etcd ;;
  redis-always) run_redis always ;;
  redis-everysec) run_redis everysec ;;
  *) echo "unknown system $s (known: $ALL)" >&2; exit 2 ;;
  esac
done
echo
echo "summary of $OUT ($REPEAT runs each, ${DURATION} per loadgen run; $((SECONDS - start))s in all)"
summarize "$OUT"
