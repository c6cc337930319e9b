#!/usr/bin/env bash
# A/B: single-node SET and GET throughput of replicant built at two
# commits, side by side with Redis (appendonly yes, appendfsync always),
# in interleaved rounds on this machine; prints every run and the medians.
#
#   bench/ab.sh REV_A REV_B            # e.g. bench/ab.sh 04d3acb HEAD
#
# Env: ROUNDS (3), REQUESTS (100000), CLIENTS (64), SIZE (64), TESTS (set,get),
# KEYSPACE (100000: redis-benchmark -r), PIPELINE (1: -P).
# Ports 16391-16393 (RESP), 18091-18092, 19091-19092; everything runs from a
# temporary directory that is removed on exit. Run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bench/ab.sh REV_A REV_B"; exit 2; }
ROUNDS=${ROUNDS:-3}; REQUESTS=${REQUESTS:-100000}; CLIENTS=${CLIENTS:-64}; SIZE=${SIZE:-64}; TESTS=${TESTS:-set,get}
KEYSPACE=${KEYSPACE:-100000}; PIPELINE=${PIPELINE:-1}
for t in redis-server redis-benchmark redis-cli; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install redis-server redis-tools)"; exit 1; }
done
work=$(mktemp -d)
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  git worktree remove --force "$work/src-a" 2>/dev/null || true
  git worktree remove --force "$work/src-b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for side in a b; do
  rev=$1; [ $side = b ] && rev=$2
  git worktree add -q --detach "$work/src-$side" "$rev"
  (cd "$work/src-$side" && go build -o "$work/replicant-$side" ./cmd/replicant)
  echo "$side = $(git rev-parse --short "$rev")"
done
start() { # name port http peer
  "$work/replicant-$1" server --id n1 --data "$work/data-$1" --resp 127.0.0.1:$2 --http 127.0.0.1:$3 \
    --peer 127.0.0.1:$4 --log-level warn 2>"$work/$1.log" &
}
start a 16391 18091 19091
start b 16392 18092 19092
redis-server --port 16393 --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync always --save '' \
  --daemonize no --logfile "$work/redis.log" &
for p in 16391 16392 16393; do
  for _ in $(seq 300); do [ "$(redis-cli -p $p set __ready 1 2>/dev/null)" = OK ] && break; sleep 0.1; done
done
declare -A runs
names=()
for r in $(seq "$ROUNDS"); do
  for who in a:16391 b:16392 redis:16393; do
    name=${who%%:*}; port=${who##*:}
    while IFS=, read -r test rps _; do
      test=${test//\"/}; rps=${rps//\"/}
      echo "round $r $name $test $rps"
      # redis-benchmark names some tests with a note ("LRANGE_100 (first
      # 100 elements)"): keep each name, in the order first seen.
      [ -n "${runs[$name,$test]:-}" ] || [ "$name" != a ] || [ "$r" != 1 ] || names+=("$test")
      runs[$name,$test]+="$rps "
    done < <(redis-benchmark -p "$port" -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" -d "$SIZE" -r "$KEYSPACE" -P "$PIPELINE" --csv | tail -n +2)
  done
done
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "medians (ops/s) over $ROUNDS rounds, $CLIENTS clients, $SIZE-byte values, -r $KEYSPACE, -P $PIPELINE:"
for T in "${names[@]}"; do
  a=$(median "${runs[a,$T]}"); b=$(median "${runs[b,$T]}"); d=$(median "${runs[redis,$T]}")
  awk -v t="$T" -v a="$a" -v b="$b" -v d="$d" 'BEGIN {printf "%s: a %.0f  b %.0f  redis %.0f   b/a %.3f  a/redis %.2f  b/redis %.2f\n", t, a, b, d, b/a, a/d, b/d}'
done
