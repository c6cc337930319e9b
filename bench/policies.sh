#!/usr/bin/env bash
# Why one commit policy is faster than another: for each --sync policy, a
# fresh 3-node cluster, bin/loadgen at 64 clients and at 1 client, and from
# the leader's /metrics the group-commit size, the fsync wait and the
# commit-wait histogram, the sync-set changes (replication events), plus a
# CPU profile of the leader and of n2 during the 64-client run.
#
#   bench/policies.sh                          # 'FIRST 1 (n2,n3)' and all
#   POLICIES="async|FIRST 1 (*)|all" DURATION=8s bench/policies.sh
#
# Profiles go to bench/results/policies-DATE-<policy>-n{1,2}.pprof.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
POLICIES=${POLICIES:-"FIRST 1 (n2,n3)|all"}
DURATION=${DURATION:-8s}
mkdir -p bench/results
base=bench/results/policies-$(date -u +%Y%m%d-%H%M%S)
bench_init

# metric NAME: the leader's value of a counter/gauge/histogram line (summed).
metric() {
  curl -s "http://$(r_http 1)/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.6f", s }'
}
events() {
  curl -s "http://$(r_http 1)/metrics" | awk '/^replicant_replication_events_total/ { printf "%s ", $0 }'
}

IFS='|' read -ra pols <<<"$POLICIES"
for pol in "${pols[@]}"; do
  tag=$(tr -c 'a-zA-Z0-9' '-' <<<"$pol" | tr -s '-' | sed 's/-$//')
  echo "=== --sync '$pol'"
  start_replicant_cluster "$pol" durable || { bench_stop_all; continue; }
  timeout 60 bin/loadgen -duration 2s -clients 16 -target resp -addrs "$(r_resp 1)" >/dev/null || true
  b0=$(metric replicant_group_commit_entries_count) e0=$(metric replicant_group_commit_entries_sum)
  f0=$(metric replicant_fsync_wait_seconds_sum) c0=$(metric replicant_write_commit_seconds_sum) n0=$(metric replicant_write_commit_seconds_count)
  ev0=$(events)
  curls=()
  for i in 1 2; do
    curl -sf --max-time 60 -o "$base-$tag-n$i.pprof" "http://$(r_http "$i")/debug/pprof/profile?seconds=${DURATION%s}" &
    curls+=($!)
  done
  j=$(timeout 120 bin/loadgen -format json -target resp -addrs "$(r_resp 1)" -clients 64 -duration "$DURATION")
  for p in "${curls[@]}"; do wait "$p" || echo "profile download failed" >&2; done
  b1=$(metric replicant_group_commit_entries_count) e1=$(metric replicant_group_commit_entries_sum)
  f1=$(metric replicant_fsync_wait_seconds_sum) c1=$(metric replicant_write_commit_seconds_sum) n1=$(metric replicant_write_commit_seconds_count)
  echo "64 clients: $(jq -c '{ops_per_s: (.ops_per_s | floor), p50_ms, p99_ms}' <<<"$j")"
  awk -v b="$((${b1%.*} - ${b0%.*}))" -v e="$(awk -v a="$e0" -v b="$e1" 'BEGIN{print b-a}')" \
    -v f="$(awk -v a="$f0" -v b="$f1" 'BEGIN{print b-a}')" -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" \
    -v n="$(awk -v a="$n0" -v b="$n1" 'BEGIN{print b-a}')" 'BEGIN {
      printf "leader: %d group commits, %.1f entries each, fsync wait %.3f ms each, commit wait %.3f ms per write\n",
        b, (b > 0 ? e / b : 0), (b > 0 ? f / b * 1000 : 0), (n > 0 ? c / n * 1000 : 0) }'
  echo "replication events before: ${ev0:-none}"
  echo "replication events after:  $(events)"
  j=$(timeout 120 bin/loadgen -format json -target resp -addrs "$(r_resp 1)" -clients 1 -duration 5s)
  echo "1 client: $(jq -c '{ops_per_s: (.ops_per_s | floor), p50_ms, p99_ms}' <<<"$j")"
  for i in 1 2; do
    echo "--- n$i: top of $base-$tag-n$i.pprof (cumulative, replicant's code)"
    go tool pprof -top -cum -nodecount 60 bin/replicant "$base-$tag-n$i.pprof" 2>/dev/null | grep -E 'replicant-db|Syscall6$|fdatasync' | head -12
  done
  bench_stop_all
done
