#!/usr/bin/env bash
# Where replicant's CPU goes under write load: starts a 3-node cluster (or one
# node with NODES=1), runs bench/loadgen against the leader, and meanwhile
# takes a CPU profile of the leader and of follower n2 from /debug/pprof.
# Saves the profiles to bench/results/ and prints the top functions.
#
#   bench/profile.sh                               # async, 64 clients, 10 s profile
#   SYNC='FIRST 1 (n2,n3)' CLIENTS=16 bench/profile.sh
#   NODES=1 bench/profile.sh
#   go tool pprof -http :0 bench/results/profile-...-n1.pprof     # to browse
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SYNC=${SYNC:-async}
CLIENTS=${CLIENTS:-64}
SECS=${SECS:-10}
NODES=${NODES:-3}
VALUE_SIZE=${VALUE_SIZE:-64}
mkdir -p bench/results
base=bench/results/profile-$(date -u +%Y%m%d-%H%M%S)

bench_init
if [ "$NODES" = 1 ]; then
  start_replicant 1 --log-level warn
  wait_until 30 sh -c "[ \"\$(redis-cli -p 17381 set __bench_ready 1)\" = OK ]"
else
  start_replicant_cluster "$SYNC" durable
fi
timeout $((SECS + 60)) bin/loadgen -target resp -addrs "$(r_resp 1)" -clients "$CLIENTS" \
  -duration $((SECS + 4))s -value-size "$VALUE_SIZE" >"$BENCH_WORK/load.json" &
lg=$!
sleep 2
nodes=1
[ "$NODES" = 1 ] || nodes="1 2"
curls=()
for i in $nodes; do
  curl -sf --max-time $((SECS + 30)) -o "$base-n$i.pprof" "http://$(r_http "$i")/debug/pprof/profile?seconds=$SECS" &
  curls+=($!)
done
wait $lg || true
for p in "${curls[@]}"; do wait "$p" || echo "profile download failed" >&2; done
echo "load: $(cat "$BENCH_WORK/load.json")"
for i in $nodes; do
  echo
  echo "=== n$i ($base-n$i.pprof), top by cumulative time in replicant's own code"
  go tool pprof -top -cum -nodecount 40 bin/replicant "$base-n$i.pprof" 2>/dev/null | sed -n '1,6p;/replicant-db/p' | head -35
  echo "--- top flat"
  go tool pprof -top -nodecount 20 bin/replicant "$base-n$i.pprof" 2>/dev/null | tail -n 20
done
