// Package convergent runs package datatype's collections — hashes, sets
// and sorted sets — on the modes that keep a collection as one convergent
// state per key (multi-leader, leaderless: engine.CollTxn and
// engine.CollReader, a crdt.Coll beside the key's string register), so
// that every collection command handler in internal/api/resp works there
// unchanged.
//
// Package datatype stores a collection as metadata at its key (an id, a
// length) and one key per element under the id (datatype.ElemKey). Here
// nothing of that is stored; the layout is virtual, per transaction or
// reader:
//
//   - Get of a key the mode shows as a collection returns the metadata of
//     a virtual id bound to the key, with the Coll's live count as length.
//     Ids mean nothing outside the Txn or Reader that made them.
//   - Element keys of that id read and write the key's Coll: SubField is a
//     hash's fields, SubMember a set's members or a sorted set's members
//     (value: the 8-byte score); SubScore, the score index, is derived
//     from the members (sorted once per change) and writes to it are
//     dropped. Owner records are dropped: a Coll needs no sweeper.
//   - NewID gives a fresh id whose elements are kept as written until
//     SetTyped names their key and type: then the key's old state goes
//     (the mode deletes a string or stored collection; Clear drops what an
//     expired or deleted one left) and the elements are stamped anew onto
//     it. RENAME and COPY are that, with the source's elements.
//   - The first element write to a key drops the live entries of the other
//     types (ClearType): the command saw the key as one type.
//   - Lists are refused with an *engine.UnsupportedError naming the mode.
//   - Every Coll a command changed is put (PutColl) once, when its closure
//     returns nil (Run, Txn.Flush); a failed command puts nothing.
//   - Stamps come from CollTxn.Stamp after the key's Coll was read, so a
//     write supersedes everything the command saw.
//
// Semantics the layout gives (docs/design/types-modes.md): a package
// datatype delete of a collection the command changed (it emptied it, or
// DEL after writes in one MULTI) removes the entries it saw, so a set
// member added concurrently elsewhere survives; any other DEL, a string
// SET over the key and expiry are the mode's, clearing by time.
//
// Where the adapter sits: at the RESP server's few entry points to the
// engine (internal/api/resp: write, EXEC, scripts, and the connection's
// reader), not as a wrapper of the engine in internal/node. The engine has
// optional interfaces the APIs type-assert (engine.AsyncWriter,
// engine.SiblingReader, engine.Sites); a wrapper would hide each one it
// did not repeat, and one taking a closure (WriteAsync) would bypass it.
// At the entry points nothing is hidden, the one transaction of an EXEC or
// a script spans all its commands (one put per key at the end), and the
// HTTP API needs no adapter: it reads a collection only to answer that it
// is one, and its PUT and DELETE are the mode's own string writes.
//
// Invariants:
//   - Nothing in the element or owner space reaches the mode: element
//     writes change Colls, owner records are dropped.
//   - A key's Coll is read once per transaction and put once, at the end
//     of the command closure (an INCR of a key the same transaction
//     emptied puts it first, so that the mode counts on what it shows);
//     a write the mode makes itself to the key (SET, DEL, INCR) makes the
//     adapter forget its copy, so the two never disagree.
//   - The adapter has the mode's optional interfaces it forwards
//     (engine.Versioned) exactly when the mode's Txn or Reader has them.
package convergent
