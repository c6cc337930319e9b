// Package budget bounds the memory the API servers spend on client
// requests they are reading or running: one Budget of bytes, shared by the
// RESP and HTTP servers of a process, so that many concurrent large
// requests wait for each other instead of together exhausting memory.
//
// Invariant: the bytes granted by a Budget and not yet released never
// exceed its capacity, except that one request larger than the whole
// capacity is granted alone (when nothing else is held), so the bytes
// held never exceed max(capacity, the largest request). Requests are
// granted in arrival order, so a large request is not starved by a stream
// of small ones, and a request waits at most the budget's wait limit
// (never past its context) before it is refused.
package budget
