#!/usr/bin/env bash
# Multi-leader mode (issue 9) side by side with single-leader on this
# machine: three one-node sites linked all-to-all against one three-node
# single-leader cluster (async commit, like the sites' async links).
#
#   bench/multileader.sh                 # ROUNDS=3 N=60000
#
# Measures, per round (the order of the two systems alternates):
#   SET and INCR throughput, 63 clients: the sites get 21 each, at the same
#     time (every site takes writes); the single-leader cluster gets all 63
#     on its leader;
#   write p50/p99 at 1 client (local latency: one site vs the leader);
#   how many entries the links were behind when the load stopped (cross-
#     site lag in time is measured by test/multileader_geo_test.go, which
#     times each write from its acknowledgement to its visibility);
#   conflicts per second under a hot key: all three sites SET one key.
# Raw numbers go to $OUT (CSV: name,round,system,value,unit). Geography
# (50 ms between sites) is measured by test/multileader_geo_test.go.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3}
N=${N:-60000}
mkdir -p bench/results
OUT=${OUT:-bench/results/multileader-$(date -u +%Y%m%d-%H%M%S).csv}
: >"$OUT"
bench_init
raw() { echo "$1,$2,$3,$4,$5" >>"$OUT"; }
SITES=(eu us ap)

start_sites() {
  rm -rf "$BENCH_WORK"/n[1-4] "$BENCH_WORK"/n[1-4].log
  local i j
  for i in 1 2 3; do
    start_replicant "$i" --mode multi-leader --site "${SITES[$((i - 1))]}" --log-level info
  done
  for i in 1 2 3; do
    wait_until 30 curl -sf "http://$(r_http "$i")/readyz" || { echo "site $i not ready" >&2; return 1; }
  done
  for i in 1 2 3; do
    for j in 1 2 3; do
      [ "$i" = "$j" ] && continue
      wait_until 20 curl -sf -XPOST "http://$(r_http "$i")/v1/links" -d "{\"peer\":\"$(r_peer "$j")\"}" ||
        { echo "link $i <- $j failed" >&2; return 1; }
    done
  done
}

# rb PORT CLIENTS TEST N [ARGS...]: requests per second (redis-benchmark).
rb() {
  local port=$1 c=$2 t=$3 n=$4; shift 4
  redis-benchmark -p "$port" -c "$c" -t "$t" -n "$n" -r 1000000 -d 64 --csv "$@" 2>/dev/null |
    grep -i "^\"$t\"" | tr -d '"' | cut -d, -f2
}
# rb_lat PORT: p50,p99 ms of SET at one client.
rb_lat() {
  redis-benchmark -p "$1" -c 1 -t set -n 3000 -r 1000000 -d 64 --csv 2>/dev/null |
    grep '^"SET' | tr -d '"' | cut -d, -f5,8
}
sum() { awk '{ s += $1 } END { printf "%.0f", s }'; }

conflicts() { local s=0 i; for i in 1 2 3; do s=$((s + $(curl -s "http://$(r_http "$i")/v1/status" | jq '.conflicts // 0'))); done; echo $s; }

run_ml() {
  local r=$1
  start_sites
  local t
  for t in set incr; do
    local ops
    ops=$( (for i in 1 2 3; do rb "1738$i" 21 "$t" $((N / 3)) & done; wait) | sum)
    raw "$t-63c" "$r" multi-leader "$ops" ops/s
    # How far behind the links were when the load stopped.
    raw "lag-entries-after-$t" "$r" multi-leader "$(for i in 1 2 3; do curl -s "http://$(r_http "$i")/v1/status" | jq '[.links[]?.lag_entries] | max // 0'; done | sort -g | tail -1)" entries
  done
  local lat; lat=$(rb_lat 17381)
  raw set-1c-p50 "$r" multi-leader "${lat%,*}" ms
  raw set-1c-p99 "$r" multi-leader "${lat#*,}" ms
  local c0 c1 t0 t1
  c0=$(conflicts); t0=$(date +%s.%N)
  # In a subshell: a bare wait here would also wait for the servers.
  (for i in 1 2 3; do redis-benchmark -p "1738$i" -c 4 -t set -n 6000 -r 1 -d 16 -q >/dev/null 2>&1 & done; wait)
  t1=$(date +%s.%N)
  # Conflicts are recorded as the links deliver: give them a moment.
  sleep 2; c1=$(conflicts)
  raw hotkey-conflicts-per-s "$r" multi-leader "$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')" 1/s
  bench_stop_all
}

run_sl() {
  local r=$1
  start_replicant_cluster async durable
  local t
  for t in set incr; do
    raw "$t-63c" "$r" single-leader "$(rb 17381 63 "$t" "$N")" ops/s
  done
  local lat; lat=$(rb_lat 17381)
  raw set-1c-p50 "$r" single-leader "${lat%,*}" ms
  raw set-1c-p99 "$r" single-leader "${lat#*,}" ms
  bench_stop_all
}

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run_ml "$r"; run_sl "$r"; else run_sl "$r"; run_ml "$r"; fi
  echo "round $r done" >&2
done

median_of() { grep "^$1,[0-9]*,$2," "$OUT" | cut -d, -f4 | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "| measure | multi-leader (3 sites) | single-leader (3 nodes, async) | ratio |"
echo "|---|---|---|---|"
for m in set-63c incr-63c set-1c-p50 set-1c-p99; do
  a=$(median_of "$m" multi-leader); b=$(median_of "$m" single-leader)
  echo "| $m | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b }') |"
done
for m in lag-entries-after-set lag-entries-after-incr hotkey-conflicts-per-s; do
  echo "| $m | $(median_of "$m" multi-leader) | - | - |"
done
echo "raw: $OUT"
