// Package replication is the leader and follower logic of replicant's
// single-leader replication.
//
// The leader's write path (Writer) turns client proposals into log entries
// and appends them in group-commit batches. Whether an entry is committed is
// decided by Core, a deterministic state machine without I/O, goroutines or
// clocks: it takes the leader's appends and fsyncs, the followers'
// acknowledgements, the control plane's sync set and the time as inputs, and
// outputs the commit LSN, the sync set to propose to the control plane, and
// events. The commit policy it enforces (async, all, FIRST k (…), ANY k (…)),
// the ack level and the fallback are the typed vocabulary of package policy.
package replication
