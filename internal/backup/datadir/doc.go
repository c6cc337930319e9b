// Package datadir is backup and restore on a node's data directory,
// without a server: `replicant restore` seeds a new node's directory from
// a backup file, through the same install steps a follower uses for a
// snapshot from its leader; `replicant backup --data` writes a backup of a
// stopped node's directory at a chosen LSN, which with a delayed replica is
// point-in-time recovery.
//
// Invariants:
//
// Restore (`replicant restore`):
//   - Nothing is written before the whole file has verified (structure,
//     counts, SHA-256): a corrupt or truncated backup leaves the target
//     directory as it was (absent, or empty).
//   - The store appears under DIR/store only once it is complete: it is
//     built in DIR/.restore-incomplete and renamed, so a crash or error
//     mid-way never leaves a store the server would start from. (The
//     store's own "installing" mark would make the server wipe a half
//     install and start empty: silently without the data.)
//   - The file is verified again while it is installed; if it changed in
//     between, the install is discarded.
//   - Beside the store, DIR/restored-from-backup.json (Marker) records
//     where the data came from; `replicant server` reads it to refuse a
//     first start in which the node would not be the first leader (a
//     leader with an empty log would roll the restored data back).
//   - A restored store is at the backup's LSN with epoch history
//     [epoch 1 from LSN 1]: it looks like a node of a new cluster whose
//     first leader wrote everything up to that LSN and whose log retention
//     has dropped the entries. The new cluster's first leader (epoch 1)
//     continues the log at LSN+1, and a follower with an empty directory
//     receives the data as a snapshot.
//
// Backup of a stopped node (`replicant backup --data`):
//   - It reads a stopped node's directory: the store is opened with an
//     apply delay longer than any history, so opening it applies no entry
//     the node had not applied itself (a delayed replica's pending entries,
//     a bad write among them, stay unapplied).
//   - The backup's LSN is at most the commit LSN the node recorded (or the
//     cluster's, when the caller vouches for it): an entry above it may
//     never have committed in the cluster.
//   - It is at least the store's GC floor: below it, versions a read there
//     would need may have been collected.
//   - To reach an LSN above what the node applied, it applies the node's
//     own logged entries up to that LSN, as the node would have; nothing
//     above it.
package datadir
