#!/usr/bin/env bash
# Snapshot join speed: load SIZE_MB of data into a 3-node replicant cluster,
# then add a 4th node with `--join` and measure how fast the snapshot
# streams and installs; compare with a Redis full resync of the same data
# (a fresh replica doing REPLICAOF against a primary holding it).
#
#   bench/join.sh                        # 1024 MB in 16 KiB values (~5-10 min)
#   SIZE_MB=256 REPEAT=1 bench/join.sh
#
# Env: SIZE_MB (1024), VALUE_SIZE (16384), LOAD_CLIENTS (16), REPEAT (2:
# joins n4, then n5, one after the other; Redis: two fresh replicas),
# OUT (CSV; default bench/results/join-DATE.csv), PROFILE (seconds: CPU
# profiles of the leader and the joining node during the join, saved next
# to OUT).
#
# MB/s is logical data: key + value + 16 bytes per pair, the count that
# replicant's "snapshot installed" / "snapshot sent" log lines use; the Redis
# rate is computed with the same byte count over the time from REPLICAOF to
# master_link_status:up with master_sync_in_progress:0.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SIZE_MB=${SIZE_MB:-1024}
VALUE_SIZE=${VALUE_SIZE:-16384}
LOAD_CLIENTS=${LOAD_CLIENTS:-16}
REPEAT=${REPEAT:-2}
mkdir -p bench/results
OUT=${OUT:-bench/results/join-$(date -u +%Y%m%d-%H%M%S).csv}
KEYS=$((SIZE_MB * 1024 * 1024 / VALUE_SIZE))
# key "key:" + 12 digits = 16 bytes
LOGICAL=$((KEYS * (16 + VALUE_SIZE + 16)))

bench_init
echo "system,step,keys,bytes,seconds,mb_per_s,wall_seconds,detail" >"$OUT"
row() { echo "$1" | tee -a "$OUT"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
logfield() { grep -o "$1=[0-9.e+]*" <<<"$2" | head -1 | cut -d= -f2; }

load() { # SYSTEM ADDR
  local line t0
  t0=$(now)
  line=$(timeout 1200 bin/loadgen -target resp -addrs "$2" -seq -total "$KEYS" -clients "$LOAD_CLIENTS" \
    -value-size "$VALUE_SIZE" -duration 1200s -format json) || { echo "load failed: $line" >&2; return 1; }
  echo "load: $line"
  [ "$(jq .ops <<<"$line")" = "$KEYS" ] || { echo "load wrote $(jq .ops <<<"$line") of $KEYS keys" >&2; return 1; }
  row "$1,load,$KEYS,$LOGICAL,$(jq .seconds <<<"$line"),$(jq '.mb_per_s * 1000 | round / 1000' <<<"$line"),$(since "$t0"),loadgen $LOAD_CLIENTS clients"
}

echo "=== $SIZE_MB MB: $KEYS keys x $VALUE_SIZE-byte random values"
echo "=== replicant: 3-node cluster (async), load, then join"
start_replicant_cluster async durable
load replicant "$(r_resp 1)"
leader_commit() { curl -sf "http://$(r_http 1)/v1/status" | jq -r .commit_lsn; }
followers_caught_up() {
  curl -sf "http://$(r_http 1)/v1/status" | jq -e '[.members[] | select(.applied_lsn >= 0 and .lag_entries == 0)] | length >= 2' >/dev/null
}
t0=$(now)
wait_until 600 followers_caught_up || echo "followers did not catch up within 600s" >&2
echo "followers caught up $(since "$t0")s after the load; leader data dir: $(du -sh "$BENCH_WORK/n1" | cut -f1)"
commit=$(leader_commit)
for r in $(seq "$REPEAT"); do
  i=$((3 + r))
  echo "--- join n$i (commit LSN $commit)"
  t0=$(now)
  start_replicant "$i" --join "$(r_peer 1)" --log-level info
  if [ -n "${PROFILE:-}" ]; then
    curl -sf --retry 20 --retry-connrefused --retry-delay 0 --max-time $((PROFILE + 30)) \
      -o "${OUT%.csv}-n$i.pprof" "http://$(r_http "$i")/debug/pprof/profile?seconds=$PROFILE" &
    curl -sf --max-time $((PROFILE + 30)) -o "${OUT%.csv}-n1-for-n$i.pprof" \
      "http://$(r_http 1)/debug/pprof/profile?seconds=$PROFILE" &
  fi
  if ! wait_until 900 grep -q 'snapshot installed' "$BENCH_WORK/n$i.log"; then
    echo "n$i: no 'snapshot installed' within 900s; log tail:" >&2
    tail -20 "$BENCH_WORK/n$i.log" >&2
    row "replicant,join-n$i,,,,,$(since "$t0"),FAILED: no snapshot installed"
    continue
  fi
  installed_wall=$(since "$t0")
  inst=$(grep -m1 'snapshot installed' "$BENCH_WORK/n$i.log")
  sent=$(grep 'snapshot sent' "$BENCH_WORK/n1.log" | grep "follower=n$i" | tail -1 || true)
  echo "n$i: $inst"
  echo "n1: $sent"
  caught() { curl -sf "http://$(r_http "$i")/v1/status" | jq -e --argjson c "$commit" '.applied_lsn >= $c' >/dev/null; }
  wait_until 300 caught || echo "n$i did not reach applied_lsn $commit within 300s" >&2
  ready_wall=$(since "$t0")
  n=$(redis-cli -p "1738$i" dbsize 2>&1 || true)
  k=$(printf 'key:%012d' $((KEYS / 2)))
  same=$([ "$(redis-cli -p "1738$i" get "$k" | sha1sum)" = "$(redis-cli -p 17381 get "$k" | sha1sum)" ] && echo same || echo DIFFERENT)
  row "replicant,join-n$i,$(logfield keys "$inst"),$(logfield bytes "$inst"),$(logfield seconds "$inst"),$(logfield mb_per_s "$inst"),$installed_wall,install; wall from process start; dbsize=$n; $k $same"
  [ -n "$sent" ] && row "replicant,sent-to-n$i,$(logfield keys "$sent"),$(logfield bytes "$sent"),$(logfield seconds "$sent"),$(logfield mb_per_s "$sent"),,leader side"
  row "replicant,ready-n$i,,$LOGICAL,,$(awk -v b="$LOGICAL" -v s="$ready_wall" 'BEGIN{printf "%.1f", b/1e6/s}'),$ready_wall,process start to applied_lsn >= $commit"
done
check() { if grep -hE 'panic|fatal|level=ERROR' "$BENCH_WORK"/n*.log >/dev/null; then echo "!!! errors in replicant logs:" >&2; grep -hE -m10 'panic|fatal|level=ERROR' "$BENCH_WORK"/n*.log >&2; fi; }
check
bench_stop_all
rm -rf "$BENCH_WORK"/n[1-9]

echo "=== Redis $(redis-server --version | grep -o 'v=[^ ]*'): primary, load, then fresh replicas (full resync)"
# Primary without persistence (loading speed only matters here); diskless
# sync with no delay (Redis 7's default waits 5 s for more replicas).
start_redis 1 everysec "" --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0
load redis 127.0.0.1:17791
echo "primary used_memory: $(redis-cli -p 17791 info memory | tr -d '\r' | grep '^used_memory_human')"
for r in $(seq "$REPEAT"); do
  i=$((1 + r))
  rm -rf "$BENCH_WORK/redis$i"
  start_redis "$i" everysec "" --appendonly no
  t0=$(now)
  redis-cli -p "1779$i" replicaof 127.0.0.1 17791 >/dev/null
  sleep 0.2
  if ! wait_until 900 redis_replica_up "1779$i"; then
    row "redis,fullsync-$i,,,,,$(since "$t0"),FAILED: not up within 900s"
    continue
  fi
  wall=$(since "$t0")
  n=$(redis-cli -p "1779$i" dbsize)
  row "redis,fullsync-$i,$n,$LOGICAL,$wall,$(awk -v b="$LOGICAL" -v s="$wall" 'BEGIN{printf "%.1f", b/1e6/s}'),$wall,REPLICAOF to link up + sync done; diskless sync; dbsize=$n"
  redis-cli -p "1779$i" replicaof no one >/dev/null
done
bench_stop_all

echo
echo "results ($OUT):"
column -s, -t <"$OUT"
