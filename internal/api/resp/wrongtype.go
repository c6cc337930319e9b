package resp

import "github.com/replicant-db/replicant/internal/engine"

const msgWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"

// strValue is the string a string command reads from v, or WRONGTYPE when
// the key holds a collection. Every string command reads through it.
func strValue(v engine.Version) ([]byte, error) {
	if v.Type != engine.TypeString {
		return nil, replyError(msgWrongType)
	}
	return v.Value, nil
}
