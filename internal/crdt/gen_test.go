package crdt

import (
	"bytes"

	"pgregory.net/rapid"
)

// testIDs is small on purpose: random vectors and histories then share ids
// often, which is where merges and comparisons have work to do. "a" and
// "aa" test that order is bytewise, not by length.
var testIDs = []string{"a", "aa", "b", "eu", "us"}

func idGen() *rapid.Generator[string] { return rapid.SampledFrom(testIDs) }

// counterGen favours small counters (collisions between vectors) but also
// draws the extremes the encodings must survive.
func counterGen() *rapid.Generator[uint64] {
	return rapid.OneOf(rapid.Uint64Range(0, 5), rapid.Uint64())
}

func vectorGen() *rapid.Generator[Vector] {
	return rapid.Custom(func(t *rapid.T) Vector {
		return VectorOf(rapid.MapOfN(idGen(), counterGen(), 0, len(testIDs)).Draw(t, "entries"))
	})
}

func timestampGen() *rapid.Generator[Timestamp] {
	return rapid.Custom(func(t *rapid.T) Timestamp {
		return Timestamp{WallMs: rapid.Int64().Draw(t, "wall"), Logical: rapid.Uint32().Draw(t, "logical")}
	})
}

// tb is what both *testing.T and *rapid.T offer.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

func mustEncode(t tb, v interface{ AppendBinary([]byte) ([]byte, error) }) []byte {
	t.Helper()
	b, err := v.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	return b
}

// checkCanonical is the shared decoding property: whatever a decoder
// accepts, re-encoding gives back exactly the input.
func checkCanonical[V interface{ AppendBinary([]byte) ([]byte, error) }](t tb, name string, decode func([]byte) (V, error), in []byte) {
	t.Helper()
	v, err := decode(in)
	if err != nil {
		return
	}
	out, _ := v.AppendBinary(nil)
	if !bytes.Equal(out, in) {
		t.Fatalf("%s accepted %x but re-encodes it as %x", name, in, out)
	}
}

// mutate returns b with a few random edits (flip, insert, delete,
// truncate): inputs near valid encodings reach the deep checks of a
// decoder, which uniformly random bytes almost never do.
func mutate(t *rapid.T, b []byte) []byte {
	b = bytes.Clone(b)
	for range rapid.IntRange(1, 3).Draw(t, "edits") {
		if len(b) == 0 {
			return append(b, rapid.Byte().Draw(t, "byte"))
		}
		i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
		switch rapid.IntRange(0, 3).Draw(t, "edit") {
		case 0:
			b[i] ^= byte(rapid.IntRange(1, 255).Draw(t, "xor"))
		case 1:
			b = append(b[:i], append([]byte{rapid.Byte().Draw(t, "byte")}, b[i:]...)...)
		case 2:
			b = append(b[:i], b[i+1:]...)
		case 3:
			b = b[:i]
		}
	}
	return b
}
