package engine

import "github.com/replicant-db/replicant/internal/crdt"

// Type is the Redis type of the value stored under a key. Strings are the
// zero value, so every version written before collection types existed
// (and every version the multi-leader and leaderless modes store) is a
// string.
type Type uint8

// The types, by TYPE's names.
const (
	TypeString Type = 0
	TypeHash   Type = 1
	TypeList   Type = 2
	TypeSet    Type = 3
	TypeZSet   Type = 4
)

// String is the type's name as TYPE answers it.
func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeHash:
		return "hash"
	case TypeList:
		return "list"
	case TypeSet:
		return "set"
	case TypeZSet:
		return "zset"
	}
	return "unknown"
}

// Valid reports whether t is one of the known types (a stored type byte
// outside them is corruption).
func (t Type) Valid() bool { return t <= TypeZSet }

// TypedTxn is implemented by the Txns of modes that store collection types
// (hashes, lists, sets, sorted sets): single-leader. A mode whose Txn does
// not implement it refuses those types with an error naming the mode.
type TypedTxn interface {
	Txn
	// SetTyped is Set for a value of type t (a collection's metadata).
	SetTyped(key []byte, t Type, value []byte, expireAtMs int64)
	// NewID returns an identifier no other collection in this state's
	// history has: a collection's elements are keyed by it, so a key
	// deleted and created again never sees its old elements.
	NewID() (uint64, error)
}

// CollTxn is implemented by the Txns of modes that keep a collection as one
// convergent state per key (multi-leader, leaderless): a crdt.Coll merged
// by a join, beside the key's string register. Package
// internal/datatype/convergent maps the element layout of package
// datatype onto it, so the collection commands run unchanged there.
type CollTxn interface {
	Txn
	// GetColl returns key's collection state (the zero Coll if none),
	// whether or not the key shows it (it may be expired, or hidden by a
	// newer string).
	GetColl(key []byte) (crdt.Coll, error)
	// PutColl stores c as key's collection state. The key's string
	// register is left as it is: the newer of the two is what the key
	// holds (crdt.Coll.Visible).
	PutColl(key []byte, c crdt.Coll)
	// Stamp returns a new stamp, newer than every stamp this transaction
	// has read: a write stamped with it supersedes what the command saw.
	Stamp() crdt.Stamp
}

// CollReader is implemented by the Readers of the modes whose Txns are
// CollTxns.
type CollReader interface {
	Reader
	GetColl(key []byte) (crdt.Coll, error)
}
