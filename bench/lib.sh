# Shared helpers for bench/cluster.sh and bench/join.sh (source it; not a
# script of its own). Everything runs on 127.0.0.1 in a temporary directory
# ($BENCH_WORK) that the EXIT trap removes together with every process the
# script started.
#
# Ports (chosen away from `replicant dev`'s 638x/808x/908x and Redis/etcd
# defaults):
#   replicant node i (1..4): RESP 1738i, HTTP 1748i, peer 1758i
#   etcd member i (1..3):    client 1772i, peer 1773i
#   Redis i (1..4):          1779i (1 = primary)

BENCH_PIDS=()

bench_init() {
  for t in curl jq redis-server redis-cli redis-benchmark go; do
    command -v $t >/dev/null || { echo "needs $t on PATH (apt-get install curl jq redis-server redis-tools)" >&2; exit 1; }
  done
  BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/replicant-bench.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  # Build both binaries up front; retry the main one a few times, since the
  # tree may be mid-edit by someone else.
  local i
  for i in 1 2 3 4 5; do
    go build -o bin/replicant ./cmd/replicant && break
    [ $i = 5 ] && { echo "cannot build bin/replicant" >&2; exit 1; }
    echo "build failed; retrying in 60s" >&2; sleep 60
  done
  (cd bench/loadgen && go build -o ../../bin/loadgen .) || { echo "cannot build bench/loadgen" >&2; exit 1; }
  echo "replicant $(git describe --always --dirty 2>/dev/null || echo '(no git)'), $(go version | cut -d' ' -f3), $(nproc) CPUs, $(date -u +%FT%TZ)"
}

bench_cleanup() {
  bench_stop_all
  [ -n "${BENCH_KEEP:-}" ] && { echo "kept $BENCH_WORK" >&2; return; }
  rm -rf "$BENCH_WORK"
}

# bench_stop_all: SIGTERM every process we started, SIGKILL after 10s.
bench_stop_all() {
  local p i
  [ ${#BENCH_PIDS[@]} -eq 0 ] && return 0
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq 100); do
    local alive=
    for p in "${BENCH_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in "${BENCH_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  BENCH_PIDS=()
}

# wait_until SECONDS CMD...: poll CMD every 0.2s until it succeeds.
wait_until() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

# --- replicant ---------------------------------------------------------------
r_resp() { echo "127.0.0.1:1738$1"; }
r_http() { echo "127.0.0.1:1748$1"; }
r_peer() { echo "127.0.0.1:1758$1"; }

# start_replicant NODE EXTRA_ARGS...: one node with its own data dir and log.
# --pprof: profile.sh and policies.sh take CPU profiles from /debug/pprof,
# which a server serves only when asked to (registering it costs nothing).
start_replicant() {
  local i=$1; shift
  bin/replicant server --id "n$i" --data "$BENCH_WORK/n$i" --pprof \
    --resp "$(r_resp "$i")" --http "$(r_http "$i")" --peer "$(r_peer "$i")" "$@" \
    >"$BENCH_WORK/n$i.log" 2>&1 &
  BENCH_PIDS+=($!)
}

# start_replicant_cluster SYNC ACK: 3 fresh nodes, n1 the first leader; waits
# until n1 is leader, both followers are healthy, and a write succeeds.
start_replicant_cluster() {
  local sync=$1 ack=$2 i
  rm -rf "$BENCH_WORK"/n[1-4] "$BENCH_WORK"/n[1-4].log
  local ic="n1=$(r_peer 1),n2=$(r_peer 2),n3=$(r_peer 3)"
  for i in 1 2 3; do
    start_replicant "$i" --initial-cluster "$ic" --sync "$sync" --ack "$ack" --log-level info
  done
  if ! wait_until 60 replicant_healthy 2; then
    echo "replicant cluster (sync=$sync) did not become healthy in 60s; status:" >&2
    curl -s "http://$(r_http 1)/v1/status" >&2 || true
    tail -n 5 "$BENCH_WORK"/n[123].log >&2
    return 1
  fi
  wait_until 30 sh -c "[ \"\$(redis-cli -p 17381 set __bench_ready 1)\" = OK ]" ||
    { echo "replicant leader does not accept writes" >&2; return 1; }
}

# replicant_healthy N: n1 is leader and N members are healthy.
replicant_healthy() {
  curl -sf --max-time 2 "http://$(r_http 1)/v1/status" |
    jq -e --argjson n "$1" '.role == "leader" and ([.members[] | select(.healthy)] | length) >= $n' >/dev/null
}

# --- etcd ----------------------------------------------------------------------
etcd_client() { echo "127.0.0.1:1772$1"; }

start_etcd_cluster() {
  local i ic=
  for i in 1 2 3; do ic="${ic:+$ic,}e$i=http://127.0.0.1:1773$i"; done
  rm -rf "$BENCH_WORK"/e[1-3]
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$BENCH_WORK/e$i" \
      --listen-client-urls "http://$(etcd_client $i)" --advertise-client-urls "http://$(etcd_client $i)" \
      --listen-peer-urls "http://127.0.0.1:1773$i" --initial-advertise-peer-urls "http://127.0.0.1:1773$i" \
      --initial-cluster "$ic" --initial-cluster-state new --initial-cluster-token replicant-bench \
      --logger zap --log-outputs stderr >"$BENCH_WORK/e$i.log" 2>&1 &
    BENCH_PIDS+=($!)
  done
  wait_until 60 env ETCDCTL_API=3 etcdctl --endpoints "$(etcd_client 1),$(etcd_client 2),$(etcd_client 3)" \
    --command-timeout 2s put __bench_ready 1 || { echo "etcd cluster did not come up" >&2; tail -n 5 "$BENCH_WORK"/e*.log >&2; return 1; }
}

# etcd_leader: client address of the current etcd leader.
etcd_leader() {
  ETCDCTL_API=3 etcdctl --endpoints "$(etcd_client 1),$(etcd_client 2),$(etcd_client 3)" endpoint status -w json |
    jq -r '.[] | select(.Status.leader == .Status.header.member_id) | .Endpoint' | sed 's|^http://||' | head -1
}

# --- Redis ---------------------------------------------------------------------
# start_redis I FSYNC [replicaof-port] EXTRA...: AOF on, RDB snapshots off.
start_redis() {
  local i=$1 fsync=$2 master=${3:-}; shift 3 || shift $#
  mkdir -p "$BENCH_WORK/redis$i"
  local args=(--port "1779$i" --bind 127.0.0.1 --dir "$BENCH_WORK/redis$i" --save ''
    --appendonly yes --appendfsync "$fsync" --daemonize no --logfile "$BENCH_WORK/redis$i.log")
  [ -n "$master" ] && args+=(--replicaof 127.0.0.1 "$master")
  redis-server "${args[@]}" "$@" &
  BENCH_PIDS+=($!)
  wait_until 30 redis-cli -p "1779$i" ping || { echo "redis $i did not start" >&2; return 1; }
}

# redis_replica_up PORT: the replica finished its sync and streams.
redis_replica_up() {
  local info
  info=$(redis-cli -p "$1" info replication | tr -d '\r')
  grep -q '^master_link_status:up' <<<"$info" && grep -q '^master_sync_in_progress:0' <<<"$info"
}

start_redis_cluster() { # FSYNC: primary 17791, replicas 17792 17793
  rm -rf "$BENCH_WORK"/redis[1-4]
  start_redis 1 "$1" ""
  start_redis 2 "$1" 17791
  start_redis 3 "$1" 17791
  wait_until 60 sh -c 'redis-cli -p 17791 info replication | tr -d "\r" | grep -q "^connected_slaves:2" && redis-cli -p 17791 wait 2 1000 | grep -q 2' ||
    { echo "redis replicas did not connect" >&2; return 1; }
  wait_until 60 redis_replica_up 17792 && wait_until 60 redis_replica_up 17793
}

# --- results ---------------------------------------------------------------------
# rb_csv LABEL CLIENTS SIZE REDIS-BENCHMARK-ARGS...: run redis-benchmark SET and
# print a loadgen-format CSV line (ops, errors and p90/p99.9 unknown: blank).
rb_csv() {
  local label=$1 c=$2 size=$3; shift 3
  local out start end
  start=$(date +%s.%N)
  out=$(timeout 600 redis-benchmark -t set -c "$c" -d "$size" -r 1000000 --csv "$@" 2>&1 | tail -1) || true
  end=$(date +%s.%N)
  if ! grep -q '^"SET' <<<"$out"; then
    echo "redis-benchmark failed for $label: $out" >&2
    return 0
  fi
  tr -d '"' <<<"$out" | awk -F, -v l="$label" -v c="$c" -v s="$size" -v t="$start" -v e="$end" \
    '{printf "%s,redis-benchmark,%d,0,%d,%.2f,,,%.0f,%.2f,%.3f,,%.3f,,%.3f,0,0,0,0,0\n", l, c, s, e-t, $2, $2*s/1e6, $5, $7, $8}'
}

# summarize CSV: per (label without the "#run" suffix, tool, clients, wait) the
# best run by ops/s with its latency and lag, and the median ops/s over runs.
summarize() {
  sort -t, -k1,1 -k2,2 -k3,3n -k4,4n -k9,9nr "$1" | awk -F, '
    function flush() {
      if (key == "") return
      m = (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
      printf "| %s | %s | %d | %s | %.0f | %.0f | %s | %s | %s | %s | %s | %d |\n", sys, tool, cl, wt, best, m, p50, p99, lagS, lagE, cpu, n
    }
    {
      split($1, a, "#"); k = a[1] "," $2 "," $3 "," $4
      if (k != key) { flush(); key = k; n = 0; sys = a[1]; tool = $2; cl = $3; wt = $4
                      best = $9; p50 = $11; p99 = $13
                      lagS = ($16 > 0) ? sprintf("%.3f", $17) : "-"; lagE = ($16 > 0) ? sprintf("%.0f", $19) : "-"
                      cpu = ($21 != "") ? $21 : "-" }
      v[++n] = $9
    }
    END { flush() }' | {
      echo "| system | tool | clients | wait | best ops/s | median ops/s | p50 ms (best) | p99 ms (best) | lag p99 s (best) | lag p99 entries (best) | server CPU us/op (best) | runs |"
      echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
      cat
    }
}
