// Package multileader is the multi-leader replication mode: each site is a
// single-leader cluster whose leader takes writes; sites pull each other's
// committed logs over links and merge what they receive.
//
// Invariants:
//   - Everything a site applies, its own clients' writes and what links
//     bring, goes through the site's own single-leader write path: the
//     site's durability, commit policy and failover hold unchanged.
//   - A user key holds a Record (last-writer-wins register + PN-counter +
//     collection); Merge is a join, so a record received twice, by two
//     paths or in any order leaves every site in the same state.
//   - A stored record is normalized: its collection holds nothing stamped
//     at or before its register (a SET or DEL clears the whole key), and
//     a live collection entry is therefore newer than the register: the
//     key then holds the collection.
//   - A local write is stamped after every stamp its transaction read,
//     and merging a record feeds its greatest stamp to the site's clock.
//   - Only a key whose newest write is a DEL is collected, and a stale
//     copy of a collected key is dropped part by part (register by its
//     origin LSN, collection by CollLSN) when this site applied that write.
//   - Per-origin positions, link cursors and the conflict log are reserved
//     keys written in the same entry as the data they describe: they are
//     replicated, rolled back and snapshotted with it.
//   - A link ships only committed entries, never an entry back to its only
//     origin, and only the site leader applies them.
//   - A vector token is covered only when every site it names has been
//     applied up to its position here.
package multileader
