// Package datadir is backup and restore on a node's data directory,
// without a server: `replicant restore` seeds a new node's directory from
// a backup file, through the same install steps a follower uses for a
// snapshot from its leader; `replicant backup --data` writes a backup of a
// stopped node's directory at a chosen LSN, which with a delayed replica is
// point-in-time recovery. Each file's comment lists its invariants.
package datadir
