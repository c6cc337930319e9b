#!/usr/bin/env bash
# The two cluster targets, measured in interleaved rounds so that the slow
# drift of a shared machine's load hits both sides of each ratio alike:
#   1. replicant FIRST 1 (n2,n3) --ack durable at 64 clients >= 2x etcd (64 clients)
#   2. replicant async >= Redis primary + 2 replicas, appendfsync always,
#      both measured with redis-benchmark -t set -c 50
# Each round runs bench/cluster.sh twice (replicant-first1 + etcd, then
# replicant-async + redis-always) with CLIENTS=64 REPEAT=1, appending to one
# CSV, then prints per-round and median ratios.
#
#   bench/targets.sh              # ROUNDS=3, DURATION=10s: ~6 min
#   ROUNDS=5 bench/targets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
export DURATION=${DURATION:-10s} VALUE_SIZE=${VALUE_SIZE:-64} CLIENTS=64 REPEAT=1
mkdir -p bench/results
export OUT=${OUT:-bench/results/targets-$(date -u +%Y%m%d-%H%M%S).csv}
: >"$OUT"
for r in $(seq "$ROUNDS"); do
  echo "##### round $r of $ROUNDS"
  n0=$(wc -l <"$OUT")
  timeout 900 bench/cluster.sh replicant-first1 etcd | grep -E '^(===|replicant|etcd|redis)' || true
  timeout 900 bench/cluster.sh replicant-async redis-always | grep -E '^(===|replicant|etcd|redis)' || true
  # tag this round's rows
  awk -v r="$r" -v n0="$n0" 'NR > n0 { print $0 ",round" r; next } { print }' "$OUT" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
done

# ops_s ROUND LABEL TOOL WAIT: ops/s of that row (column 9)
ratios() {
  awk -F, '
    { r = $NF; k = $1 "|" $2 "|" $3 "|" $4; v[r, k] = $9; rounds[r] = 1 }
    END {
      for (r in rounds) {
        f = v[r, "replicant-first1|resp|64|0"]; e = v[r, "etcd|etcd|64|0"]
        a = v[r, "replicant-async|redis-benchmark|50|0"]; d = v[r, "redis-always|redis-benchmark|50|0"]
        printf "%s,%s,%s,%s,%s,%s,%s\n", r, f, e, (e > 0 ? sprintf("%.2f", f / e) : "-"), a, d, (d > 0 ? sprintf("%.2f", a / d) : "-")
      }
    }' "$OUT" | sort
}
echo
echo "| round | FIRST 1 durable, 64 clients ops/s | etcd, 64 clients ops/s | ratio (target >= 2) | replicant async, redis-benchmark -c 50 ops/s | Redis+2 replicas always, redis-benchmark -c 50 ops/s | ratio (target >= 1) |"
echo "|---|---|---|---|---|---|---|"
ratios | sed 's/,/ | /g; s/^/| /; s/$/ |/'
ratios | awk -F, '
  { f[NR] = $4; a[NR] = $7 }
  function med(x, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
    return (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
  }
  END { printf "\nmedian ratio over %d rounds: FIRST1/etcd %.2f (target 2), async/Redis %.2f (target 1)\n", NR, med(f, NR), med(a, NR) }'
echo "rows: $OUT"
