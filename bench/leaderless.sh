#!/usr/bin/env bash
# Leaderless mode (issue 10) side by side with single-leader on this
# machine: five leaderless nodes (N=3) with 64 clients spread over all of
# them, for W/R = 1/1, 2/2 and 3/1, against a three-node single-leader
# cluster (async and FIRST 1 (*)) with 64 clients on its leader; then the
# leaderless cluster with one node down, with and without --sloppy-quorum.
#
#   bench/leaderless.sh              # ROUNDS=3 DURATION=8s
#
# Raw lines (loadgen CSV) go to $OUT; the table prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
mkdir -p bench/results
OUT=${OUT:-bench/results/leaderless-$(date -u +%Y%m%d-%H%M%S).csv}
bin_loadgen=bin/loadgen
bench_init
"$bin_loadgen" -csv-header >"$OUT"

ll_addrs() { local a= i; for i in $(seq "$1"); do a="${a:+$a,}$(r_resp "$i")"; done; echo "$a"; }

start_leaderless() { # EXTRA...
  rm -rf "$BENCH_WORK"/n[1-5] "$BENCH_WORK"/n[1-5].log
  local ic= i
  for i in 1 2 3 4 5; do ic="${ic:+$ic,}n$i=127.0.0.1:1758$i"; done
  for i in 1 2 3 4 5; do
    bin/replicant server --id "n$i" --data "$BENCH_WORK/n$i" --resp "127.0.0.1:1738$i" --http "127.0.0.1:1748$i" \
      --peer "127.0.0.1:1758$i" --initial-cluster "$ic" --mode leaderless --log-level info "$@" >"$BENCH_WORK/n$i.log" 2>&1 &
    BENCH_PIDS+=($!)
  done
  for i in 1 2 3 4 5; do
    wait_until 30 sh -c "curl -sf http://127.0.0.1:1748$i/v1/status | jq -e '[.members[] | select(.healthy)] | length == 4' >/dev/null" ||
      { echo "leaderless node $i not ready" >&2; return 1; }
  done
}

load() { # LABEL ADDRS SPREAD(0|1) OP INIT
  local args=(-target resp -addrs "$2" -clients 64 -duration "$DURATION" -label "$1" -format csv -op "$4" -keyspace 100000)
  [ "$3" = 1 ] && args+=(-spread)
  [ -n "$5" ] && args+=(-init "$5")
  "$bin_loadgen" "${args[@]}" >>"$OUT" || echo "loadgen failed for $1" >&2
}

run_ll() { local r=$1 wr
  start_leaderless
  for wr in "1 1" "2 2" "3 1"; do
    load "leaderless W/R=${wr/ //} SET#$r" "$(ll_addrs 5)" 1 set "REPLICANT.QUORUM $wr"
    load "leaderless W/R=${wr/ //} GET#$r" "$(ll_addrs 5)" 1 get "REPLICANT.QUORUM $wr"
  done
  # One node down: W=2 keeps working for every key (two of three left).
  kill "${BENCH_PIDS[4]}"; wait "${BENCH_PIDS[4]}" 2>/dev/null || true
  load "leaderless n5 down W/R=2/2 SET#$r" "$(ll_addrs 4)" 1 set "REPLICANT.QUORUM 2 2"
  load "leaderless n5 down W/R=3/1 SET#$r" "$(ll_addrs 4)" 1 set "REPLICANT.QUORUM 3 1"
  bench_stop_all
  start_leaderless --sloppy-quorum
  kill "${BENCH_PIDS[4]}"; wait "${BENCH_PIDS[4]}" 2>/dev/null || true
  load "leaderless sloppy n5 down W/R=3/1 SET#$r" "$(ll_addrs 4)" 1 set "REPLICANT.QUORUM 3 1"
  bench_stop_all
}

run_sl() { local r=$1
  start_replicant_cluster async durable
  load "single-leader async SET#$r" "$(r_resp 1)" 0 set ""
  load "single-leader async GET#$r" "$(r_resp 1)" 0 get ""
  bench_stop_all
  start_replicant_cluster 'FIRST 1 (*)' durable
  load "single-leader FIRST 1 SET#$r" "$(r_resp 1)" 0 set ""
  bench_stop_all
}

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run_ll "$r"; run_sl "$r"; else run_sl "$r"; run_ll "$r"; fi
  echo "round $r done" >&2
done

echo
echo "| system | median ops/s | median p50 ms | median p99 ms | median errors | rounds |"
echo "|---|---|---|---|---|---|"
tail -n +2 "$OUT" | awk -F, '{ split($1, a, "#"); k = a[1]; n[k]++; ops[k, n[k]] = $9; p50[k, n[k]] = $11; p99[k, n[k]] = $13; er[k, n[k]] = $8; if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
  function med(arr, k, c,   i, j, t, v) { for (i = 1; i <= c; i++) v[i] = arr[k, i] + 0
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (c % 2) ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2 }
  END { for (i = 1; i <= m; i++) { k = order[i]; printf "| %s | %.0f | %.2f | %.2f | %.0f | %d |\n", k, med(ops, k, n[k]), med(p50, k, n[k]), med(p99, k, n[k]), med(er, k, n[k]), n[k] } }'
echo "raw: $OUT"
