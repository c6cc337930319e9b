#!/usr/bin/env bash
# Single-node SET throughput and latency: replicant vs Redis with every write
# fsynced before the reply (appendonly yes, appendfsync always), same client
# (redis-benchmark), same machine, one after the other.
#
#   bench/single-node.sh            # defaults: 100000 requests per run, 64-byte values
#   REQUESTS=200000 bench/single-node.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-100000}
SIZE=${SIZE:-64}
CLIENTS=${CLIENTS:-"1 16 64"}
command -v redis-server >/dev/null || { echo "needs redis-server and redis-benchmark (apt-get install redis-server)"; exit 1; }
go build -o bin/replicant ./cmd/replicant
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

bin/replicant server --id n1 --data "$work/replicant" --resp 127.0.0.1:16381 --http 127.0.0.1:18081 \
  --peer 127.0.0.1:19081 --log-level warn 2>"$work/replicant.log" &
redis-server --port 16379 --dir "$work" --appendonly yes --appendfsync always --save '' \
  --daemonize no --logfile "$work/redis.log" &
for p in 16381 16379; do
  for _ in $(seq 100); do redis-cli -p $p ping >/dev/null 2>&1 && break; sleep 0.1; done
done

run() { # name port clients
  local out
  out=$(redis-benchmark -p "$2" -t set -n "$REQUESTS" -c "$3" -d "$SIZE" -r 1000000 --csv 2>/dev/null | tail -1)
  # "SET","rps","avg","min","p50","p95","p99","max"
  echo "$out" | tr -d '"' | awk -F, -v n="$1" -v c="$3" '{printf "%-10s %4d clients  %10.0f ops/s  p50 %6.3f ms  p99 %6.3f ms\n", n, c, $2, $5, $7}'
}
echo "SET, $REQUESTS requests, ${SIZE}-byte values, fsync before every reply; $(nproc) CPUs"
for c in $CLIENTS; do
  run replicant 16381 "$c"
  run redis 16379 "$c"
done
