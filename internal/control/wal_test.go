package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func frame(typ byte, payload string) []byte {
	var b bytes.Buffer
	appendRecord(&b, typ, []byte(payload))
	return b.Bytes()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecodeRecords(t *testing.T) {
	meta := frame(recMeta, `{"id":"a"}`)
	ent := frame(recEntry, "xyz")
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	for _, tc := range []struct {
		name     string
		in       []byte
		wantRecs int
		wantGood int
		wantErr  bool
	}{
		{name: "empty", in: nil},
		{name: "two records", in: cat(meta, ent), wantRecs: 2, wantGood: len(meta) + len(ent)},
		{name: "torn header", in: cat(meta, ent[:5]), wantRecs: 1, wantGood: len(meta)},
		{name: "torn body", in: cat(meta, ent[:len(ent)-1]), wantRecs: 1, wantGood: len(meta)},
		{name: "zero-filled tail", in: cat(meta, make([]byte, 40)), wantRecs: 1, wantGood: len(meta)},
		{name: "damaged length", in: cat(meta, flip(ent, 1), meta), wantErr: true},
		{name: "damaged header checksum", in: cat(meta, flip(ent, 5), meta), wantErr: true},
		{name: "damaged body", in: cat(meta, flip(ent, len(ent)-1)), wantErr: true},
		{name: "unknown type", in: cat(meta, frame(9, "x")), wantErr: true},
		{name: "zero length", in: cat(meta, zeroLengthRecord()), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, good, err := decodeRecords(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil || len(recs) != tc.wantRecs || good != tc.wantGood {
				t.Fatalf("recs %d good %d err %v", len(recs), good, err)
			}
		})
	}
}

// zeroLengthRecord has a valid header checksum over a length of 0.
func zeroLengthRecord() []byte {
	hdr := make([]byte, recHeader)
	binary.LittleEndian.PutUint32(hdr[4:8], crc32.Checksum(hdr[0:4], crcTable))
	return hdr
}

func entryRec(t testing.TB, term, index uint64, data string) walRecord {
	t.Helper()
	b, err := proto.Marshal(&raftpb.Entry{Term: new(term), Index: new(index), Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
	return walRecord{typ: recEntry, data: b}
}

func hsRec(t testing.TB, term, commit uint64) walRecord {
	t.Helper()
	b, err := proto.Marshal(&raftpb.HardState{Term: new(term), Commit: new(commit)})
	if err != nil {
		t.Fatal(err)
	}
	return walRecord{typ: recHardState, data: b}
}

func snapRec(t testing.TB, term, index uint64) walRecord {
	t.Helper()
	b, err := proto.Marshal(&raftpb.Snapshot{Data: []byte("{}"), Metadata: &raftpb.SnapshotMetadata{
		Term: new(term), Index: new(index), ConfState: &raftpb.ConfState{Voters: []uint64{1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return walRecord{typ: recSnapshot, data: b}
}

func TestReplay(t *testing.T) {
	for _, tc := range []struct {
		name       string
		recs       []walRecord
		wantErr    bool
		wantFirst  uint64
		wantLast   uint64
		wantCommit uint64
		wantTermAt map[uint64]uint64
	}{
		{name: "empty", wantFirst: 1, wantLast: 0},
		{
			name:      "entries and hard state",
			recs:      []walRecord{entryRec(t, 1, 1, "a"), entryRec(t, 1, 2, "b"), hsRec(t, 1, 2)},
			wantFirst: 1, wantLast: 2, wantCommit: 2,
		},
		{
			name:      "a later entry overwrites the suffix",
			recs:      []walRecord{entryRec(t, 1, 1, "a"), entryRec(t, 1, 2, "b"), entryRec(t, 1, 3, "c"), entryRec(t, 2, 2, "B"), hsRec(t, 2, 1)},
			wantFirst: 1, wantLast: 2, wantCommit: 1, wantTermAt: map[uint64]uint64{2: 2},
		},
		{
			name:      "a snapshot resets the log",
			recs:      []walRecord{entryRec(t, 1, 1, "a"), entryRec(t, 1, 2, "b"), snapRec(t, 2, 10), entryRec(t, 2, 9, "old"), entryRec(t, 2, 11, "c"), hsRec(t, 2, 11)},
			wantFirst: 11, wantLast: 11, wantCommit: 11,
		},
		{
			name:      "a hard state older than the snapshot is raised to it",
			recs:      []walRecord{hsRec(t, 1, 3), snapRec(t, 2, 10)},
			wantFirst: 11, wantLast: 10, wantCommit: 10,
		},
		{name: "gap", recs: []walRecord{entryRec(t, 1, 1, "a"), entryRec(t, 1, 3, "c")}, wantErr: true},
		{name: "index 0", recs: []walRecord{entryRec(t, 1, 0, "a")}, wantErr: true},
		{name: "commit beyond the log", recs: []walRecord{entryRec(t, 1, 1, "a"), hsRec(t, 1, 5)}, wantErr: true},
		{name: "second header", recs: []walRecord{{typ: recMeta, data: []byte("{}")}}, wantErr: true},
		{name: "undecodable entry", recs: []walRecord{{typ: recEntry, data: []byte{0xff, 0xff}}}, wantErr: true},
		{name: "snapshot going back", recs: []walRecord{snapRec(t, 2, 10), snapRec(t, 2, 9)}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := replay("/x/raft.wal", tc.recs)
			if tc.wantErr {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			first, _ := r.storage.FirstIndex()
			last, _ := r.storage.LastIndex()
			hs, _, _ := r.storage.InitialState()
			if first != tc.wantFirst || last != tc.wantLast || hs.GetCommit() != tc.wantCommit {
				t.Fatalf("first %d last %d commit %d", first, last, hs.GetCommit())
			}
			for i, term := range tc.wantTermAt {
				if got, _ := r.storage.Term(i); got != term {
					t.Fatalf("term at %d = %d, want %d", i, got, term)
				}
			}
		})
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(cat(frame(recMeta, "{}"), frame(recEntry, "abc")))
	f.Add([]byte{1, 0, 0, 0})
	f.Add(make([]byte, 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, good, err := decodeRecords(b)
		if good < 0 || good > len(b) {
			t.Fatalf("good %d out of range", good)
		}
		if err == nil {
			if _, err := replay("fuzz", recs); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("replay error is not ErrCorrupt: %v", err)
			}
		}
	})
}

// FuzzReplay feeds replay well-framed records with arbitrary contents: it
// must fail with ErrCorrupt or succeed, never panic.
func FuzzReplay(f *testing.F) {
	seed := func(recs ...walRecord) []byte {
		var b bytes.Buffer
		for _, r := range recs {
			b.WriteByte(r.typ)
			b.WriteByte(byte(len(r.data)))
			b.Write(r.data)
		}
		return b.Bytes()
	}
	f.Add(seed(entryRec(f, 1, 1, "a"), entryRec(f, 1, 2, "b"), hsRec(f, 1, 2)))
	f.Add(seed(snapRec(f, 2, 10), entryRec(f, 2, 11, "c"), hsRec(f, 2, 11), entryRec(f, 3, 11, "d")))
	f.Fuzz(func(t *testing.T, b []byte) {
		var recs []walRecord
		for len(b) >= 2 {
			typ, n := b[0], int(b[1])
			b = b[2:]
			if n > len(b) {
				n = len(b)
			}
			recs = append(recs, walRecord{typ: recMeta + typ%4, data: b[:n]})
			b = b[n:]
		}
		if _, err := replay("fuzz", recs); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("replay error is not ErrCorrupt: %v", err)
		}
	})
}
