#!/usr/bin/env bash
# System calls and context switches per command, replicant beside Redis
# (appendfsync always), under one redis-benchmark load: where a durable
# write's kernel time goes. Counts come from `perf stat` tracepoints over
# a 4 s window in the middle of the run, divided by the commands the server
# processed in that window (INFO stats). Needs perf.
#
#   bench/syscalls.sh                                   # SET, 64 clients
#   ARGS="-t get -c 64 -r 1000000" bench/syscalls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ARGS=${ARGS:-"-t set -c 64 -d 64 -r 1000000"}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; }
EVENTS=syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_pwrite64,syscalls:sys_enter_fdatasync,syscalls:sys_enter_statfs,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_nanosleep,context-switches

bench_init

processed() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/ { print $2 + 0 }'; }

# count NAME PORT PID: one load, one window, one line per event.
count() {
  local name=$1 port=$2 pid=$3 n0 n1
  redis-benchmark -p "$port" -n 100000000 $ARGS -q >/dev/null 2>&1 &
  local rb=$!
  sleep 2
  n0=$(processed "$port")
  perf stat -x, -e "$EVENTS" -p "$pid" -o "$BENCH_WORK/perf-$name" -- sleep 4
  n1=$(processed "$port")
  kill "$rb" 2>/dev/null || true
  wait "$rb" 2>/dev/null || true
  echo "== $name: $((n1 - n0)) commands in 4 s ($(( (n1 - n0) / 4 ))/s)"
  awk -F, -v n=$((n1 - n0)) '$1 ~ /^[0-9]+$/ && $1 > 0 { printf "  %-34s %6.3f per command\n", $3, $1 / n }' "$BENCH_WORK/perf-$name"
}

start_replicant 1 --log-level warn
wait_until 30 sh -c "[ \"\$(redis-cli -p 17381 set __bench_ready 1)\" = OK ]"
count replicant 17381 "${BENCH_PIDS[-1]}"
bench_stop_all
start_redis 1 always ""
wait_until 30 redis-cli -p 17791 ping
count redis 17791 "${BENCH_PIDS[-1]}"
