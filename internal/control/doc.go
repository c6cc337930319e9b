// Package control is replicant's control plane: one etcd-raft group over all
// nodes of a cluster, holding the cluster State — the members and their
// addresses, the commit policy (policy text, ack level, fallback), the data
// leader and its epoch, and the sync set. The raft leader is the controller.
//
// # Using a Group
//
// Open starts a member: it bootstraps a new cluster from
// Config.InitialCluster when Config.Dir is empty, restarts from Dir when it
// holds state (InitialCluster is then ignored), or, with Config.Join, starts
// empty and waits until an existing member calls AddMember for it. Open
// replays the local log before it returns, so State() is complete at once.
//
// Raft messages travel through the Transport given in Config: the Group calls
// Transport.Send from its raft loop (it must not block; dropping is fine);
// the transport routes each message by msg.To, a raft id, to
// Group.PeerAddr(msg.To); the receiving node passes it to Group.Step. A
// joining node does not know the cluster's members until it has received the
// log, so its transport should record the senders' addresses with
// AddPeerHint (or the integrator records the members it learned while asking
// the cluster to add it).
//
// Mutations (SetPolicy, SetSyncSet, Appoint, AddMember, RemoveMember,
// Barrier) may be called on any member: a follower forwards the proposal to
// the raft leader. Each returns once the change is applied on the calling
// member, or when its context ends. A proposal that may have been lost with
// a raft leader change is re-sent; every proposal carries a request id and
// the state machine applies a request id at most once.
//
// State returns the latest applied state; Subscribe delivers it after every
// applied change (coalesced, latest wins). IsController and ControllerID tell
// who the raft leader is. The controller runs duties on every tick: the
// built-in one appoints State.Members[0] when no data leader was ever
// appointed (epoch 0 -> 1); Config.Duties adds more (failover).
//
// # Invariants
//
//   - Every member applies the same sequence of entries and so passes through
//     the same sequence of States; State.Index is the raft index of the last
//     applied entry. Application is deterministic: it depends only on the
//     state and the entry, never on the clock or the local configuration.
//   - Epoch never decreases. It changes only through Appoint, a
//     compare-and-set that succeeds only if the epoch is still the expected
//     one, and then sets Epoch = expected+1, Leader, and an empty SyncSet.
//   - The SyncSet is changed only by SetSyncSet naming the current epoch (so
//     only by the leader of that epoch; a leader of an older epoch gets
//     ErrStaleEpoch), and by RemoveMember dropping a removed member. It names
//     members only, never the data leader, each at most once.
//   - Members and the raft configuration change together, through raft conf
//     changes; State.Members keeps bootstrap order with joined members
//     appended. The current data leader cannot be removed, nor the last
//     member.
//   - Persistence follows raft's Ready contract: the hard state, entries and
//     snapshot of a Ready are written (and fsynced when raft requires it)
//     before its messages are sent and its committed entries applied.
//     Everything lives in Dir/raft.wal, length- and CRC-framed; a damaged
//     record makes Open fail with ErrCorrupt naming the file, and only an
//     incomplete record at the very end (a torn write) is dropped.
//   - Every SnapshotEntries applied entries the state is snapshotted, the
//     in-memory log compacted and the file atomically rewritten to hold only
//     the snapshot and what follows it.
package control
