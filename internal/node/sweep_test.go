package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// TestSweeperReclaimsDeletedCollections: a deleted hash's fields (three
// sweeper batches' worth), an overwritten one's and an expired one's are
// deleted through the log by the leader's sweeper, a live hash is left
// alone, and the key count never includes elements.
func TestSweeperReclaimsDeletedCollections(t *testing.T) {
	n, err := Open(Config{ID: "n1", DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", SweepInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	hset := func(key string, fields int, expireAt int64) {
		t.Helper()
		_, err := n.Write(ctx, func(tx engine.Txn) error {
			c, err := datatype.Open(tx, []byte(key), engine.TypeHash)
			if err != nil {
				return err
			}
			for i := range fields {
				if err := c.Put(datatype.SubField, fmt.Appendf(nil, "f%05d", i), []byte("v")); err != nil {
					return err
				}
			}
			c.Meta.Len += int64(fields)
			c.ExpireAt = expireAt
			return c.Save()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// elements counts the reserved keys (elements and owner records).
	elements := func() int {
		r, err := n.Read(ctx, engine.Consistency{Level: engine.LevelLinearizable}, engine.Token{})
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		if err := r.Scan(engine.ReservedPrefix, func(key []byte, _ engine.Version) bool {
			if !engine.IsReserved(key) {
				return false
			}
			k++
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	hset("deleted", 2500, 0)
	hset("overwritten", 10, 0)
	hset("expiring", 10, time.Now().Add(300*time.Millisecond).UnixMilli())
	hset("live", 7, 0)
	if got := elements(); got != 2500+10+10+7+4 {
		t.Fatalf("%d reserved keys before, want %d", got, 2500+10+10+7+4)
	}
	if _, err := n.Write(ctx, func(tx engine.Txn) error {
		tx.Del([]byte("deleted"))
		tx.Set([]byte("overwritten"), []byte("now a string"), 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for elements() != 7+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d reserved keys left, want the live hash's 7 fields and its owner", elements())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err := n.Read(ctx, engine.Consistency{Level: engine.LevelLinearizable}, engine.Token{})
	if err != nil {
		t.Fatal(err)
	}
	v, ok, err := datatype.Read(r, []byte("live"), engine.TypeHash)
	if err != nil || !ok || v.Meta.Len != 7 {
		t.Fatalf("live hash after sweeping: %+v, %v, %v", v, ok, err)
	}
	kc, ok := r.(interface {
		KeyCount() (int64, int64, error)
	})
	if !ok {
		t.Fatalf("single-leader reader %T keeps no key count", r)
	}
	if keys, _, err := kc.KeyCount(); err != nil || keys != 2 { // live and overwritten
		t.Fatalf("key count %d (%v), want 2", keys, err)
	}
}
