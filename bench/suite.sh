#!/usr/bin/env bash
# The redis-benchmark default suite (issue 11): PING, SET, GET, INCR, LPUSH,
# RPUSH, LPOP, RPOP, SADD, HSET, SPOP, ZADD, ZPOPMIN, LRANGE_100, MSET —
# replicant (one node, every write fsynced before its reply) against Redis
# with appendonly yes, appendfsync always, same client, interleaved rounds.
#
#   bench/suite.sh                       # defaults below
#   ROUNDS=5 CLIENTS=64 bench/suite.sh
#
# Env: TESTS (the -t list; default the suite above), REQUESTS per test
# (default 50000), CLIENTS (64), ROUNDS (3: each round
# runs the whole suite on Redis, then on replicant), PIPELINE (1).
# Prints the median ops/s of each test on both, their ratio, and whether it
# meets the issue's target (>= 0.8x Redis). Ports: 16391/18091/19091
# (replicant), 16389 (Redis); a temporary directory deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-50000}
CLIENTS=${CLIENTS:-64}
ROUNDS=${ROUNDS:-3}
PIPELINE=${PIPELINE:-1}
TESTS=${TESTS:-ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset}
for t in redis-server redis-benchmark redis-cli; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install redis-server redis-tools)"; exit 1; }
done
go build -o bin/replicant ./cmd/replicant
work=$(mktemp -d)
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin/replicant server --id n1 --data "$work/replicant" --resp 127.0.0.1:16391 --http 127.0.0.1:18091 \
  --peer 127.0.0.1:19091 --log-level warn 2>"$work/replicant.log" &
redis-server --port 16389 --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync always --save '' \
  --daemonize no --logfile "$work/redis.log" &
for p in 16391 16389; do
  ok=
  for _ in $(seq 300); do
    [ "$(redis-cli -p $p set __bench_ready 1 2>/dev/null)" = OK ] && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "port $p never accepted a write"; tail -n 20 "$work"/*.log; exit 1; }
done

echo "replicant $(git describe --always --dirty 2>/dev/null || echo '(no git)'), $(redis-server --version | cut -d' ' -f3), $(nproc) CPUs, $(date -u +%FT%TZ)"
echo "redis-benchmark -t $TESTS -n $REQUESTS -c $CLIENTS -P $PIPELINE, $ROUNDS interleaved rounds"
raw="$work/raw.csv"
for round in $(seq "$ROUNDS"); do
  for sys in redis replicant; do
    port=16389; [ $sys = replicant ] && port=16391
    redis-cli -p $port flushall >/dev/null
    redis-benchmark -p $port -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" -P "$PIPELINE" --csv 2>/dev/null |
      awk -F'","' -v sys=$sys -v r=$round 'NR>1 { gsub(/"/,""); split($0,a,","); print sys","r","a[1]","a[2] }' >>"$raw"
  done
done
cp "$raw" "${OUT:-/dev/null}" 2>/dev/null || true
printf '%-28s %12s %12s %7s %s\n' test redis replicant ratio "target >=0.8x"
awk -F, '{ k=$3; v[$1 SUBSEP k] = v[$1 SUBSEP k] " " $4; if (!(k in seen)) { seen[k]=1; order[++n]=k } }
  function median(s,   a, m, i, j, t) { m = split(s, a, " ");
    for (i = 1; i <= m; i++) for (j = i+1; j <= m; j++) if (a[j]+0 < a[i]+0) { t=a[i]; a[i]=a[j]; a[j]=t }
    return m % 2 ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2 }
  END { met=0; for (i = 1; i <= n; i++) { k = order[i]; r = median(v["redis" SUBSEP k]); p = median(v["replicant" SUBSEP k]);
      ratio = r > 0 ? p / r : 0; ok = ratio >= 0.8 ? "met" : "not met"; if (ok == "met") met++
      printf "%-28s %12.0f %12.0f %6.2fx %s\n", k, r, p, ratio, ok }
    printf "%d of %d tests meet the target\n", met, n }' "$raw"
