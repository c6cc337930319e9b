// Package httpapi serves replicant's HTTP JSON API: /v1/kv/{key},
// /v1/status, /metrics, /healthz, /readyz and the dashboard at /.
//
// Invariants:
//   - Every response carries a Replicant-Token header naming state at least
//     as new as what the request observed or wrote.
//   - A PUT is acknowledged only after its entry is committed; a PUT whose
//     body exceeds the value limit is refused whole (413) and writes nothing.
//   - A write sent to a follower is redirected (307) to the leader.
package httpapi
