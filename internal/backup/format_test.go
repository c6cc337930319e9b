package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

var testHeader = Header{Mode: "single-leader", Epoch: 3, LSN: 1234, Node: "n2", Role: "follower", Leader: "n1",
	Created: time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)}

var testRecords = []Record{
	{Key: []byte(""), Value: []byte("empty key")},
	{Key: []byte("a"), Value: []byte("1")},
	{Key: []byte("a\x00b"), Value: []byte{}, ExpireAt: 1_900_000_000_000},
	{Key: []byte("big"), Value: bytes.Repeat([]byte("x"), 3*readChunk+17)},
	{Key: []byte{0xfe}, Value: []byte("hash metadata"), Type: 1, ExpireAt: 5},
	{Key: []byte{0xff, 0xfe}, Value: []byte("binary")},
}

func encode(t *testing.T, h Header, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.AddTyped(r.Key, r.Type, r.Value, r.ExpireAt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodeAll reads a whole file, returning what it read before any error.
func decodeAll(b []byte) (Header, []Record, Trailer, error) {
	d, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return Header{}, nil, Trailer{}, err
	}
	var recs []Record
	for {
		r, err := d.Next()
		if errors.Is(err, io.EOF) {
			return d.Header(), recs, d.Trailer(), nil
		}
		if err != nil {
			return d.Header(), recs, Trailer{}, err
		}
		recs = append(recs, r)
	}
}

// reseal recomputes the digest of a file whose body a test altered, so the
// decoder's structural checks (not the checksum) are what refuse it.
func reseal(b []byte) []byte {
	out := append([]byte(nil), b...)
	body := out[:len(out)-sha256.Size]
	sum := sha256.Sum256(body)
	copy(out[len(out)-sha256.Size:], sum[:])
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []Record
	}{
		{"no keys", nil},
		{"keys", testRecords},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := encode(t, testHeader, tc.recs)
			h, recs, tr, err := decodeAll(b)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Created.Equal(testHeader.Created) {
				t.Fatalf("created %v, want %v", h.Created, testHeader.Created)
			}
			h.Created = testHeader.Created
			if h != testHeader {
				t.Fatalf("header %+v, want %+v", h, testHeader)
			}
			if len(recs) != len(tc.recs) {
				t.Fatalf("%d records, want %d", len(recs), len(tc.recs))
			}
			var data uint64
			for i := range recs {
				w := tc.recs[i]
				if !bytes.Equal(recs[i].Key, w.Key) || !bytes.Equal(recs[i].Value, w.Value) || recs[i].ExpireAt != w.ExpireAt || recs[i].Type != w.Type {
					t.Fatalf("record %d: got %q=%.20q exp %d, want %q=%.20q exp %d", i, recs[i].Key, recs[i].Value, recs[i].ExpireAt, w.Key, w.Value, w.ExpireAt)
				}
				data += uint64(len(w.Key) + len(w.Value))
			}
			if tr.Keys != uint64(len(tc.recs)) || tr.Bytes != data || tr.SHA256 != sha256.Sum256(b[:len(b)-sha256.Size]) {
				t.Fatalf("trailer %+v, want %d keys, %d bytes and the file's digest", tr, len(tc.recs), data)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := encode(t, testHeader, testRecords)
	empty := encode(t, Header{Mode: "single-leader"}, nil)
	hdrLen := int(binary.BigEndian.Uint32(good[10:]))
	firstRec := 14 + hdrLen // magic, version, header length, header
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
		msg  string // part of the message
	}{
		{"empty file", nil, ErrNotBackup, "0 bytes"},
		{"text file", []byte("hello, this is not a backup\n"), ErrNotBackup, "starts with"},
		{"magic cut", good[:5], ErrTruncated, "magic"},
		{"wrong magic", mut(good, func(b []byte) []byte { b[1] = 'X'; return b }), ErrNotBackup, "starts with"},
		{"newer version", mut(good, func(b []byte) []byte { b[9] = FormatVersion + 1; return b }), ErrVersion, "newer replicant"},
		{"typed record in a version 1 file", reseal(mut(good, func(b []byte) []byte { b[9] = 1; return b })), ErrCorrupt, "typed record in a version 1"},
		{"version 0", mut(good, func(b []byte) []byte { b[9] = 0; return b }), ErrVersion, "version 0"},
		{"huge header", mut(good, func(b []byte) []byte { binary.BigEndian.PutUint32(b[10:], 1<<31); return b }), ErrCorrupt, "header length"},
		{"header cut", good[:20], ErrTruncated, "header"},
		{"header not JSON", reseal(mut(good, func(b []byte) []byte { b[14] = '['; return b })), ErrCorrupt, "header"},
		{"no trailer", good[:len(good)-1-16-sha256.Size], ErrTruncated, "without a trailer"},
		{"cut in a value", good[:firstRec+6], ErrTruncated, "value"},
		{"cut in the checksum", good[:len(good)-5], ErrTruncated, "checksum"},
		{"flipped value byte", mut(good, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }), ErrChecksum, "altered"},
		{"flipped digest byte", mut(good, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrChecksum, "SHA-256"},
		{"data after trailer", append(append([]byte(nil), good...), 0), ErrCorrupt, "follows the trailer"},
		{"unknown tag", reseal(mut(good, func(b []byte) []byte { b[firstRec] = 7; return b })), ErrCorrupt, "tag 0x07"},
		{"key length beyond limit", mut(good, func(b []byte) []byte {
			return append(b[:firstRec+1], binary.AppendUvarint(nil, MaxFieldBytes+1)...)
		}), ErrCorrupt, "exceeds"},
		{"lying length in a short file", mut(good, func(b []byte) []byte {
			return append(b[:firstRec+1], binary.AppendUvarint(nil, MaxFieldBytes)...)
		}), ErrTruncated, "key 1"},
		{"padded varint", reseal(mut(good, func(b []byte) []byte {
			// key "" has length 0: encode it as 0x80 0x00 instead.
			out := append(b[:firstRec+1:firstRec+1], 0x80, 0x00)
			return append(out, good[firstRec+2:]...)
		})), ErrCorrupt, "minimally"},
		{"keys out of order", reseal(encodeUnordered(t)), ErrCorrupt, "in order"},
		{"trailer count wrong", reseal(mut(empty, func(b []byte) []byte { b[len(b)-sha256.Size-9] = 1; return b })), ErrCorrupt, "counts"},
		{"key at LSN 0", encodeAtLSN0(t), ErrCorrupt, "LSN 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := decodeAll(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

// TestEveryTruncationFails cuts a file at every length: none may decode.
func TestEveryTruncationFails(t *testing.T) {
	good := encode(t, testHeader, testRecords[:3])
	for n := range len(good) {
		_, _, _, err := decodeAll(good[:n])
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotBackup) {
			t.Fatalf("cut at %d of %d: got %v, want a truncation error", n, len(good), err)
		}
	}
}

func TestWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewWriter(&buf, Header{}); err == nil {
		t.Fatal("a header without a mode was accepted")
	}
	w, err := NewWriter(&buf, testHeader)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("b"), nil, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  string
		exp  int64
	}{
		{"repeated key", "b", 0},
		{"descending key", "a", 0},
		{"negative expiry", "c", -1},
	} {
		if err := w.Add([]byte(tc.key), nil, tc.exp); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// encodeUnordered writes keys b, a by encoding each alone and splicing.
func encodeUnordered(t *testing.T) []byte {
	one := func(k string) []byte {
		b := encode(t, testHeader, []Record{{Key: []byte(k), Value: []byte("v")}})
		hl := int(binary.BigEndian.Uint32(b[10:]))
		return b[14+hl : len(b)-1-16-sha256.Size]
	}
	b := encode(t, testHeader, []Record{{Key: []byte("a"), Value: []byte("v")}, {Key: []byte("b"), Value: []byte("v")}})
	hl := int(binary.BigEndian.Uint32(b[10:]))
	out := append([]byte(nil), b[:14+hl]...)
	out = append(out, one("b")...)
	out = append(out, one("a")...)
	return append(out, b[len(b)-1-16-sha256.Size:]...)
}

// encodeAtLSN0 is a well-formed file that claims keys at LSN 0.
func encodeAtLSN0(t *testing.T) []byte {
	return encode(t, Header{Mode: "single-leader"}, []Record{{Key: []byte("k"), Value: []byte("v")}})
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(&testing.T{}, testHeader, testRecords[:3]))
	f.Add(encode(&testing.T{}, Header{Mode: "single-leader"}, nil))
	f.Add([]byte("\x89RPLBAK\n\x00\x01\x00\x00\x00\x02{}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := NewReader(bytes.NewReader(in))
		if err != nil {
			checkKind(t, err)
			return
		}
		var buf bytes.Buffer
		w, err := newWriterRaw(&buf, d.raw)
		if err != nil {
			t.Fatalf("re-encode header: %v", err)
		}
		for {
			r, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				checkKind(t, err)
				return
			}
			if err := w.Add(r.Key, r.Value, r.ExpireAt); err != nil {
				t.Fatalf("a decoded record does not re-encode: %v", err)
			}
		}
		// One file, one encoding: what verifies re-encodes to the same
		// bytes (the header as it was read).
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), in) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", in, buf.Bytes())
		}
	})
}

func checkKind(t *testing.T, err error) {
	t.Helper()
	for _, k := range []error{ErrNotBackup, ErrVersion, ErrTruncated, ErrCorrupt, ErrChecksum} {
		if errors.Is(err, k) {
			return
		}
	}
	t.Fatalf("error %v wraps no error kind of the package", err)
}
