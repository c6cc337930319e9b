package logrec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sameEntry compares entries treating nil and empty byte slices as equal:
// DecodeEntry aliases its input, so an empty key comes back as a non-nil
// empty slice, which is the same value to every reader.
func sameEntry(a, b Entry) bool {
	if a.LSN != b.LSN || a.Epoch != b.Epoch || a.Time != b.Time || len(a.Ops) != len(b.Ops) {
		return false
	}
	for i := range a.Ops {
		x, y := a.Ops[i], b.Ops[i]
		if x.Kind != y.Kind || x.Type != y.Type || x.ExpireAt != y.ExpireAt || !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Value, y.Value) {
			return false
		}
	}
	return true
}

// withCRC appends a valid CRC-32C to body, so a test can hand DecodeEntry a
// garbled record that passes the checksum and must be caught by the parser.
func withCRC(body []byte) []byte {
	out := append([]byte(nil), body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}

func TestEntryRoundTrip(t *testing.T) {
	manyOps := make([]Op, 1000)
	for i := range manyOps {
		manyOps[i] = Op{Kind: OpSet, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
	}
	tests := []struct {
		name string
		e    Entry
	}{
		{"zero entry", Entry{}},
		{"no ops", Entry{LSN: 1, Epoch: 1, Time: 1700000000000000000}},
		{"extreme positions", Entry{LSN: math.MaxUint64, Epoch: math.MaxUint64, Time: math.MinInt64,
			Ops: []Op{{Kind: OpSet, Key: []byte("k"), Value: []byte("v"), ExpireAt: math.MaxInt64}}}},
		{"negative time and expiry", Entry{LSN: 7, Epoch: 2, Time: -1,
			Ops: []Op{{Kind: OpSet, Key: []byte("k"), Value: []byte("v"), ExpireAt: -5}}}},
		{"set with expiry", Entry{LSN: 42, Epoch: 3, Time: 123,
			Ops: []Op{{Kind: OpSet, Key: []byte("session:1"), Value: []byte("alice"), ExpireAt: 1700000000123}}}},
		{"del", Entry{LSN: 43, Epoch: 3, Ops: []Op{{Kind: OpDel, Key: []byte("gone")}}}},
		{"typed set", Entry{LSN: 47, Epoch: 3, Ops: []Op{
			{Kind: OpSet, Key: []byte("h"), Value: []byte("meta"), Type: 1, ExpireAt: 9},
			{Kind: OpSet, Key: []byte("s"), Value: []byte("plain")},
			{Kind: OpSet, Key: []byte("z"), Value: nil, Type: MaxType}}}},
		{"flush", Entry{LSN: 44, Epoch: 3, Ops: []Op{{Kind: OpFlush}}}},
		{"empty key and value", Entry{LSN: 45, Epoch: 3, Ops: []Op{{Kind: OpSet, Key: []byte{}, Value: []byte{}}}}},
		{"binary key and value", Entry{LSN: 46, Epoch: 3,
			Ops: []Op{{Kind: OpSet, Key: []byte{0, 0xFF, 0, 1, 0}, Value: []byte{0xFF, 0, 0x80, 0x7F}}}}},
		{"mixed ops in one entry", Entry{LSN: 47, Epoch: 4, Time: 99, Ops: []Op{
			{Kind: OpSet, Key: []byte("a"), Value: []byte("1")},
			{Kind: OpDel, Key: []byte("b")},
			{Kind: OpFlush},
			{Kind: OpSet, Key: []byte("c"), Value: []byte("3"), ExpireAt: 10},
		}}},
		{"large value", Entry{LSN: 48, Epoch: 4,
			Ops: []Op{{Kind: OpSet, Key: []byte("big"), Value: bytes.Repeat([]byte{0xAB}, 1<<20)}}}},
		{"many ops", Entry{LSN: 49, Epoch: 4, Ops: manyOps}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := AppendEntry(nil, &tt.e)
			// EncodedSize is used to size buffers and account batch bytes;
			// it must never underestimate.
			if n := tt.e.EncodedSize(); len(enc) > n {
				t.Errorf("EncodedSize = %d, encoding is %d bytes", n, len(enc))
			}
			got, err := DecodeEntry(enc)
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			if !sameEntry(got, tt.e) {
				t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", got, tt.e)
			}
			// AppendEntry must append, not overwrite: the log writer reuses
			// one buffer for a batch.
			prefix := []byte("prefix")
			enc2 := AppendEntry(append([]byte(nil), prefix...), &tt.e)
			if !bytes.HasPrefix(enc2, prefix) || !bytes.Equal(enc2[len(prefix):], enc) {
				t.Fatalf("AppendEntry with a non-empty dst differs from the plain encoding")
			}
		})
	}
}

func TestDecodeEntryRejects(t *testing.T) {
	valid := AppendEntry(nil, &Entry{LSN: 300, Epoch: 2, Time: 5, Ops: []Op{
		{Kind: OpSet, Key: []byte("key"), Value: []byte("value"), ExpireAt: 77},
		{Kind: OpDel, Key: []byte("other")},
	}})
	body := valid[:len(valid)-4]

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrMalformedEntry},
		{"empty", []byte{}, ErrMalformedEntry},
		{"shorter than a checksum plus version", []byte{1, 2, 3, 4}, ErrMalformedEntry},
		{"checksum of nothing", withCRC(nil), ErrMalformedEntry},
		{"wrong stored checksum", append(append([]byte(nil), body...), 0, 0, 0, 0), ErrChecksum},
		{"body truncated, old checksum", append(append([]byte(nil), body[:len(body)-1]...), valid[len(valid)-4:]...), ErrChecksum},
		{"checksum truncated", valid[:len(valid)-1], ErrChecksum},
		{"unknown format version", withCRC(append([]byte{2}, body[1:]...)), ErrMalformedEntry},
		{"header only", withCRC([]byte{entryFormatV1}), ErrMalformedEntry},
		{"truncated uvarint", withCRC([]byte{entryFormatV1, 0x80}), ErrMalformedEntry},
		{"uvarint overflow", withCRC(append([]byte{entryFormatV1}, bytes.Repeat([]byte{0xFF}, 11)...)), ErrMalformedEntry},
		{"op count beyond input", withCRC([]byte{entryFormatV1, 1, 1, 0, 0x7F}), ErrMalformedEntry},
		{"op count huge", withCRC(binary.AppendUvarint([]byte{entryFormatV1, 1, 1, 0}, math.MaxUint64)), ErrMalformedEntry},
		{"op kind zero", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, 0, 0, 0, 0}), ErrMalformedEntry},
		{"op kind four", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, 4, 0, 0, 0}), ErrMalformedEntry},
		{"typed op with type zero", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpSet) | typedFlag, 0, 1, 'k', 0, 0}), ErrMalformedEntry},
		{"typed op with unknown type", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpSet) | typedFlag, MaxType + 1, 1, 'k', 0, 0}), ErrMalformedEntry},
		{"typed delete", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpDel) | typedFlag, 1, 1, 'k', 0, 0}), ErrMalformedEntry},
		{"typed op without its type", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpSet) | typedFlag}), ErrMalformedEntry},
		{"key length beyond input", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpSet), 9, 'k', 0, 0}), ErrMalformedEntry},
		{"value length beyond input", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpSet), 1, 'k', 9, 0}), ErrMalformedEntry},
		{"missing expiry", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpSet), 1, 'k', 0}), ErrMalformedEntry},
		{"trailing byte", withCRC(append(append([]byte(nil), body...), 0)), ErrMalformedEntry},
		// A varint padded with a 0x80 0x00 continuation decodes to the
		// same number; accepting it would give one entry two encodings,
		// so a decoded entry would no longer re-encode to its bytes.
		{"non-canonical LSN varint", withCRC([]byte{entryFormatV1, 0x81, 0x00, 1, 0, 0}), ErrMalformedEntry},
		{"non-canonical time varint", withCRC([]byte{entryFormatV1, 1, 1, 0x80, 0x00, 0}), ErrMalformedEntry},
		{"non-canonical key length", withCRC([]byte{entryFormatV1, 1, 1, 0, 1, byte(OpDel), 0x80, 0x00, 0, 0}), ErrMalformedEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEntry(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeEntry(%x) = %v, want an error wrapping %v", tt.in, err, tt.want)
			}
		})
	}
}

// TestDecodeEntryEveryTruncation cuts a valid record at every length: a
// torn write must always be reported, as a checksum or format error.
func TestDecodeEntryEveryTruncation(t *testing.T) {
	valid := AppendEntry(nil, &Entry{LSN: 1 << 40, Epoch: 9, Time: -3, Ops: []Op{
		{Kind: OpSet, Key: []byte("k\x00"), Value: []byte("v"), ExpireAt: 1 << 50},
		{Kind: OpFlush},
	}})
	for n := 0; n < len(valid); n++ {
		_, err := DecodeEntry(valid[:n])
		if !errors.Is(err, ErrMalformedEntry) && !errors.Is(err, ErrChecksum) {
			t.Errorf("truncated to %d of %d bytes: err = %v", n, len(valid), err)
		}
	}
}

// TestDecodeEntryEveryBitFlip flips each bit of a valid record. CRC-32C
// detects every single-bit error, so each flip must be ErrChecksum
// specifically, including flips inside the stored checksum.
func TestDecodeEntryEveryBitFlip(t *testing.T) {
	valid := AppendEntry(nil, &Entry{LSN: 12345, Epoch: 3, Time: 1700000000000000000, Ops: []Op{
		{Kind: OpSet, Key: []byte("counter"), Value: []byte("41"), ExpireAt: 0},
		{Kind: OpDel, Key: []byte("old")},
	}})
	for i := range len(valid) * 8 {
		b := append([]byte(nil), valid...)
		b[i/8] ^= 1 << (i % 8)
		_, err := DecodeEntry(b)
		if !errors.Is(err, ErrChecksum) {
			t.Errorf("bit %d flipped: err = %v, want ErrChecksum", i, err)
		}
	}
}

// fuzzSeedEntries are the entries whose encodings seed FuzzDecodeEntry; the
// committed corpus under testdata/fuzz holds more (garbled) inputs.
var fuzzSeedEntries = []Entry{
	{},
	{LSN: 1, Epoch: 1, Time: 1, Ops: []Op{{Kind: OpSet, Key: []byte("a"), Value: []byte("1")}}},
	{LSN: 2, Epoch: 1, Ops: []Op{{Kind: OpDel, Key: []byte("a\x00b")}, {Kind: OpFlush}}},
	{LSN: math.MaxUint64, Epoch: 7, Time: -1, Ops: []Op{{Kind: OpSet, Key: []byte{0xFF}, Value: []byte{}, ExpireAt: math.MinInt64}}},
}

func FuzzDecodeEntry(f *testing.F) {
	for i := range fuzzSeedEntries {
		f.Add(AppendEntry(nil, &fuzzSeedEntries[i]))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := DecodeEntry(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedEntry) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("error %v wraps neither ErrMalformedEntry nor ErrChecksum", err)
			}
			return
		}
		// One entry, one encoding: what decodes must re-encode to exactly
		// the stored bytes, or replicas could disagree about a record that
		// both accept.
		if out := AppendEntry(nil, &e); !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", in, out)
		}
	})
}

// TestFuzzCorpusPresent guards against the committed corpus being dropped:
// its garbled and non-canonical inputs are what plain `go test` checks
// beyond the f.Add seeds.
func TestFuzzCorpusPresent(t *testing.T) {
	for _, name := range []string{"valid-set", "non-canonical-varint", "bad-kind-valid-crc"} {
		if _, err := readCorpusFile(name); err != nil {
			t.Errorf("seed corpus file %s: %v", name, err)
		}
	}
}

func readCorpusFile(name string) (string, error) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecodeEntry", name))
	if err != nil {
		return "", err
	}
	b := string(raw)
	if !strings.HasPrefix(b, "go test fuzz v1\n") {
		return "", errors.New("not a go fuzz corpus file")
	}
	return b, nil
}
