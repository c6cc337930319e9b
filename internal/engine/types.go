package engine

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
