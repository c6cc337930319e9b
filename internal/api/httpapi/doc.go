// Package httpapi serves replicant's HTTP JSON API: /v1/kv/{key},
// /v1/status, /metrics, /healthz, /readyz and the dashboard at / with its
// data, /v1/cluster (the leader's view relayed) and /v1/history.
//
// Invariants:
//   - Every response carries a Replicant-Token header naming state at least
//     as new as what the request observed or wrote.
//   - A PUT is acknowledged only after its entry is committed; a PUT whose
//     body exceeds the value limit is refused whole (413) and writes nothing.
//   - A write sent to a follower is redirected (307) to the leader.
//   - A PUT body is read into memory reserved first from the request
//     buffer budget (shared with the RESP server) and held until the write
//     is done; without room within the budget's wait it is refused with
//     503 and Retry-After. Headers must arrive within ReadHeaderTimeout, a
//     body within BodyTimeout once reading starts; at most MaxConns
//     connections are open.
//   - /v1/cluster relays only to the member the control plane names as
//     leader, never relays a relayed request (local=1), and answers CORS
//     only for origins that are members' own dashboards.
//   - The timeline and chart samples (events.go) are derived from the
//     engine's status alone and kept in bounded in-memory rings.
package httpapi
