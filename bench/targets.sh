#!/usr/bin/env bash
# Issue 8's performance targets, each measured side by side with Redis (and
# etcd) on this machine, printed as: target, measured value, met / NOT MET.
# Ratios are medians over ROUNDS interleaved rounds (the order of the systems
# alternates between rounds), so the slow drift of a shared machine's load
# hits both sides of a ratio alike. About 15 minutes on 2 cores.
#
#   make bench                       # = bench/targets.sh
#   SECTIONS="single cluster" bench/targets.sh
#   ROUNDS=5 KEYS=1000000 JOIN_MB=128 bench/targets.sh
#
# Sections:
#   single   one node vs Redis (appendonly yes, appendfsync always): SET at 64
#            clients, SET pipelined (-P 16), GET, server CPU per SET
#   cluster  3 nodes, --sync 'FIRST 1 (*)' --ack durable vs Redis primary + 2
#            replicas (appendfsync always) vs etcd 3.4 (3 members), 64
#            clients; the same cluster switched to async; one client FIRST 1
#            p50; follower lag p99 at half the 64-client throughput
#   keys     KEYS keys of 64 bytes loaded into one node and into Redis (64
#            clients, pipelines of 32 SETs): RSS, data directory vs AOF size,
#            load time
#   join     snapshot join throughput (bench/join.sh, JOIN_MB of data)
# Every raw number goes to $OUT (CSV: section,name,round,system,value,unit).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SECTIONS=${SECTIONS:-"single cluster keys join"}
ROUNDS=${ROUNDS:-3}
KEYS=${KEYS:-10000000}
JOIN_MB=${JOIN_MB:-256}
VALUE_SIZE=64
mkdir -p bench/results
OUT=${OUT:-bench/results/targets-$(date -u +%Y%m%d-%H%M%S).csv}
: >"$OUT"
for t in etcd etcdctl; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install etcd-server etcd-client)" >&2; exit 1; }
done

bench_init
VERDICTS=$BENCH_WORK/verdicts
: >"$VERDICTS"
T0=$SECONDS

raw() { echo "$1,$2,$3,$4,$5,$6" >>"$OUT"; } # section name round system value unit

# verdict NAME TARGET-TEXT MEASURED-TEXT OK(0|1)
verdict() {
  local mark="NOT MET"
  [ "$4" = 1 ] && mark=met
  printf '%-44s | %-34s | %-40s | %s\n' "$1" "$2" "$3" "$mark" | tee -a "$VERDICTS"
}

# median VALUES...: the median of numbers (empty if none).
median() {
  printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) exit; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.2f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }' && echo 1 || echo 0; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }' && echo 1 || echo 0; }

cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# rbrun PORT PID ARGS...: one redis-benchmark run; prints "ops_per_s cpu_us_per_op".
rbrun() {
  local port=$1 pid=$2 c0 out n; shift 2
  n=$(sed -n 's/.*-n \([0-9]*\).*/\1/p' <<<"$*")
  c0=$(cputicks "$pid")
  out=$(timeout 300 redis-benchmark -p "$port" --csv "$@" 2>/dev/null | tail -1 | tr -d '"') || true
  awk -F, -v c="$(( $(cputicks "$pid") - c0 ))" -v t="$TCK" -v n="$n" \
    '{ printf "%.0f %.1f\n", $2, c / t * 1e6 / n }' <<<"$out"
}

section_single() {
  echo "=== single node: replicant vs Redis appendfsync always ($ROUNDS rounds)"
  rm -rf "$BENCH_WORK"/n[1-4] "$BENCH_WORK"/redis[1-4]
  start_replicant 1 --log-level warn
  local rpid=${BENCH_PIDS[-1]}
  start_redis 1 always ""
  local dpid=${BENCH_PIDS[-1]}
  wait_until 30 sh -c "[ \"\$(redis-cli -p 17381 set __bench_ready 1)\" = OK ]" ||
    { echo "replicant never accepted a write" >&2; bench_stop_all; return 0; }
  local r sys port pid set p16 get cpu s_r=() p_r=() g_r=() cpu_r=() cpu_d=()
  for r in $(seq "$ROUNDS"); do
    local order="replicant redis"
    [ $((r % 2)) = 0 ] && order="redis replicant"
    declare -A S P G C
    for sys in $order; do
      port=17381 pid=$rpid
      [ "$sys" = redis ] && port=17791 pid=$dpid
      read -r set cpu < <(rbrun "$port" "$pid" -t set -c 64 -n 100000 -d $VALUE_SIZE -r 1000000)
      read -r p16 _ < <(rbrun "$port" "$pid" -t set -c 64 -P 16 -n 400000 -d $VALUE_SIZE -r 1000000)
      read -r get _ < <(rbrun "$port" "$pid" -t get -c 64 -n 200000 -d $VALUE_SIZE -r 1000000)
      S[$sys]=$set P[$sys]=$p16 G[$sys]=$get C[$sys]=$cpu
      raw single set-c64 "$r" "$sys" "$set" ops/s
      raw single set-c64-cpu "$r" "$sys" "$cpu" us/op
      raw single set-c64-P16 "$r" "$sys" "$p16" ops/s
      raw single get-c64 "$r" "$sys" "$get" ops/s
      echo "round $r $sys: SET ${set}/s (${cpu} us CPU/op), SET -P16 ${p16}/s, GET ${get}/s"
    done
    s_r+=("$(ratio "${S[replicant]}" "${S[redis]}")")
    p_r+=("$(ratio "${P[replicant]}" "${P[redis]}")")
    g_r+=("$(ratio "${G[replicant]}" "${G[redis]}")")
    cpu_r+=("${C[replicant]}")
    cpu_d+=("${C[redis]}")
  done
  bench_stop_all
  local m
  m=$(median "${s_r[@]}"); verdict "single SET, 64 clients, fsync per reply" ">= 1.0x Redis always" "${m}x (rounds: ${s_r[*]})" "$(ge "$m" 1.0)"
  m=$(median "${p_r[@]}"); verdict "single SET -P 16, 64 clients" ">= 0.8x Redis always" "${m}x (rounds: ${p_r[*]})" "$(ge "$m" 0.8)"
  m=$(median "${cpu_r[@]}"); verdict "single server CPU per SET, 64 clients" "<= 15 us" "${m} us (Redis $(median "${cpu_d[@]}") us)" "$(le "$m" 15)"
  m=$(median "${g_r[@]}"); verdict "single GET, 64 clients" ">= 0.9x Redis" "${m}x (rounds: ${g_r[*]})" "$(ge "$m" 0.9)"
}

# lg ARGS...: one bin/loadgen run, JSON on stdout.
lg() { timeout 120 bin/loadgen -format json -value-size $VALUE_SIZE "$@" 2>/dev/null || echo '{}'; }

section_cluster() {
  echo "=== three nodes: replicant FIRST 1 (*) / async vs Redis primary + 2 replicas (always) vs etcd ($ROUNDS rounds)"
  if ! start_replicant_cluster 'FIRST 1 (*)' durable || ! start_redis_cluster always || ! start_etcd_cluster; then
    echo "a cluster did not start; skipping the cluster section" >&2
    bench_stop_all
    return 0
  fi
  local leader; leader=$(etcd_leader)
  local dur=8s r j f a d e one lag fr=() er=() ar=() ones=() lags=()
  timeout 60 bin/loadgen -duration 2s -clients 16 -target resp -addrs "$(r_resp 1)" >/dev/null || true
  for r in $(seq "$ROUNDS"); do
    # FIRST 1, Redis, etcd, in an order that alternates between rounds.
    local order="first1 redis etcd"
    [ $((r % 2)) = 0 ] && order="etcd redis first1"
    for s in $order; do
      case $s in
      first1) j=$(lg -target resp -addrs "$(r_resp 1)" -clients 64 -duration $dur); f=$(jq -r '.ops_per_s // empty' <<<"$j") ;;
      redis) j=$(lg -target resp -addrs 127.0.0.1:17791 -clients 64 -duration $dur); d=$(jq -r '.ops_per_s // empty' <<<"$j") ;;
      etcd) j=$(lg -target etcd -addrs "$leader" -clients 64 -duration $dur); e=$(jq -r '.ops_per_s // empty' <<<"$j") ;;
      esac
    done
    bin/replicant config set sync async --addr "$(r_http 1)" >/dev/null
    a=$(jq -r '.ops_per_s // empty' <<<"$(lg -target resp -addrs "$(r_resp 1)" -clients 64 -duration $dur)")
    bin/replicant config set sync 'FIRST 1 (*)' --addr "$(r_http 1)" >/dev/null
    one=$(jq -r '.p50_ms // empty' <<<"$(lg -target resp -addrs "$(r_resp 1)" -clients 1 -duration 5s)")
    # Half of this round's FIRST 1 throughput, lag sampled on the leader.
    j=$(lg -target resp -addrs "$(r_resp 1)" -clients 16 -duration $dur -rate "$(awk -v f="$f" 'BEGIN{printf "%d", f/2}')" \
      -lag-url "http://$(r_http 1)/v1/status" -lag-every 50ms)
    lag=$(jq -r '(.lag_seconds_p99 // empty) * 1000' <<<"$j")
    raw cluster first1-c64 "$r" replicant "$f" ops/s
    raw cluster always-c64 "$r" redis "$d" ops/s
    raw cluster etcd-c64 "$r" etcd "$e" ops/s
    raw cluster async-c64 "$r" replicant "$a" ops/s
    raw cluster first1-c1-p50 "$r" replicant "$one" ms
    raw cluster lag-p99-half-load "$r" replicant "$lag" ms
    echo "round $r: FIRST 1 ${f}/s, Redis ${d}/s, etcd ${e}/s, async ${a}/s, 1 client p50 ${one} ms, lag p99 at half load ${lag} ms ($(jq -r .ops_per_s <<<"$j")/s)"
    fr+=("$(ratio "$f" "$d")") er+=("$(ratio "$f" "$e")") ar+=("$(ratio "$a" "$d")") ones+=("$one") lags+=("$lag")
  done
  bench_stop_all
  local m
  m=$(median "${fr[@]}"); verdict "3 nodes FIRST 1 (*) durable, 64 clients" ">= 1.0x Redis+2 replicas always" "${m}x (rounds: ${fr[*]})" "$(ge "$m" 1.0)"
  m=$(median "${er[@]}"); verdict "3 nodes FIRST 1 (*) durable, 64 clients" ">= 5x etcd 3.4" "${m}x (rounds: ${er[*]})" "$(ge "$m" 5)"
  m=$(median "${ar[@]}"); verdict "3 nodes async, 64 clients" ">= 1.2x Redis+2 replicas always" "${m}x (rounds: ${ar[*]})" "$(ge "$m" 1.2)"
  m=$(median "${ones[@]}"); verdict "3 nodes FIRST 1, one client, p50" "<= 0.6 ms" "${m} ms" "$(le "$m" 0.6)"
  m=$(median "${lags[@]}"); verdict "follower lag p99 at half load" "<= 5 ms" "${m} ms" "$(le "$m" 5)"
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

section_keys() {
  echo "=== $KEYS keys of $VALUE_SIZE bytes: memory and disk"
  rm -rf "$BENCH_WORK"/n[1-4] "$BENCH_WORK"/redis[1-4] # fresh: not the cluster section's n1
  start_replicant 1 --log-level warn
  local rpid=${BENCH_PIDS[-1]} t0 j secs rss dir aof rsecs
  wait_until 30 sh -c "[ \"\$(redis-cli -p 17381 set __bench_ready 1)\" = OK ]" ||
    { echo "replicant never accepted a write; log:" >&2; tail -5 "$BENCH_WORK/n1.log" >&2; bench_stop_all; return 0; }
  redis-cli -p 17381 del __bench_ready >/dev/null
  t0=$SECONDS
  j=$(timeout 1800 bin/loadgen -format json -target resp -addrs "$(r_resp 1)" -clients 64 -pipeline 32 -seq -total "$KEYS" \
    -value-size $VALUE_SIZE -duration 1800s) || true
  secs=$((SECONDS - t0))
  local loaded=1
  if [ "$(jq -r '.ops // 0' <<<"$j")" != "$KEYS" ]; then
    # An incomplete load measures a smaller data set: no verdict may
    # read "met" from it.
    loaded=0
    echo "replicant load stopped: $(jq -c '{ops, errors, first_error}' <<<"$j" 2>/dev/null || echo "$j")" >&2
    tail -5 "$BENCH_WORK/n1.log" >&2
  fi
  sleep 5 # let a flush or compaction settle
  rss=$(rss_kib "$rpid")
  dir=$(du -sk "$BENCH_WORK/n1" | cut -f1)
  echo "replicant: loaded $(jq .ops <<<"$j") keys in ${secs}s ($(jq .ops_per_s <<<"$j")/s), RSS $((rss / 1024)) MiB, data dir $((dir / 1024)) MiB, dbsize $(redis-cli -p 17381 dbsize)"
  bench_stop_all
  # Redis: the same keys, the same pipelined client, appendfsync always.
  start_redis 1 always ""
  t0=$SECONDS
  timeout 1800 bin/loadgen -format json -target resp -addrs 127.0.0.1:17791 -clients 64 -pipeline 32 -seq -total "$KEYS" \
    -value-size $VALUE_SIZE -duration 1800s >/dev/null || echo "redis load failed" >&2
  rsecs=$((SECONDS - t0))
  aof=$(du -sk "$BENCH_WORK/redis1" | cut -f1)
  echo "redis: loaded in ${rsecs}s, RSS $(( $(rss_kib "${BENCH_PIDS[-1]}") / 1024 )) MiB, AOF dir $((aof / 1024)) MiB"
  bench_stop_all
  raw keys rss 1 replicant "$rss" KiB
  raw keys datadir 1 replicant "$dir" KiB
  raw keys aof 1 redis "$aof" KiB
  raw keys load 1 replicant "$secs" s
  raw keys load 1 redis "$rsecs" s
  local dr note=""; dr=$(ratio "$dir" "$aof")
  [ $loaded = 1 ] || note=" LOAD STOPPED at $(jq -r '.ops // 0' <<<"$j") keys"
  verdict "$KEYS keys: RSS" "<= 256 MiB" "$((rss / 1024)) MiB (load ${secs}s; Redis ${rsecs}s)$note" "$(( loaded && $(le "$rss" 262144) ))"
  verdict "$KEYS keys: data dir vs Redis AOF" "<= 2x" "${dr}x ($((dir / 1024)) vs $((aof / 1024)) MiB)$note" "$(( loaded && $(le "$dr" 2) ))"
}

section_join() {
  echo "=== snapshot join, $JOIN_MB MB (bench/join.sh)"
  local out=$BENCH_WORK/join.csv rate ready
  SIZE_MB=$JOIN_MB REPEAT=1 OUT=$out bench/join.sh >"$BENCH_WORK/join.log" 2>&1 || true
  rate=$(awk -F, '$1 == "replicant" && $2 ~ /^join-n/ { print $6; exit }' "$out" 2>/dev/null)
  ready=$(awk -F, '$1 == "replicant" && $2 ~ /^ready-n/ { print $6; exit }' "$out" 2>/dev/null)
  raw join install 1 replicant "$rate" MB/s
  raw join ready 1 replicant "$ready" MB/s
  verdict "snapshot join ($JOIN_MB MB)" ">= 200 MB/s" "${rate:-?} MB/s install, ${ready:-?} MB/s start to caught up" "$(ge "$rate" 200)"
}

for s in $SECTIONS; do
  case $s in
  single) section_single ;;
  cluster) section_cluster ;;
  keys) section_keys ;;
  join) section_join ;;
  *) echo "unknown section $s (single cluster keys join)" >&2; exit 2 ;;
  esac
done
echo
echo "=== targets (issue 8), $((SECONDS - T0))s; raw numbers in $OUT"
printf '%-44s | %-34s | %-40s | %s\n' target "goal" measured verdict
cat "$VERDICTS"
