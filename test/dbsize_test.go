package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDBSizeAfterSnapshotJoin: a follower that joins by installing a
// snapshot answers DBSIZE (from storage's key count) and INFO keyspace
// like its leader, and keeps doing so as writes, deletes and a FLUSHALL
// stream in.
func TestDBSizeAfterSnapshotJoin(t *testing.T) {
	c := newCluster(t, 1)
	leader := c.node("n1")
	rl := leader.redis()
	ctx := ctxT(t, 2*time.Minute)
	for i := range 300 {
		k := "k" + strconv.Itoa(i)
		var err error
		switch i % 3 {
		case 0:
			err = rl.Set(ctx, k, "v", 0).Err()
		case 1:
			err = rl.Set(ctx, k, "v", time.Hour).Err()
		case 2:
			err = rl.Set(ctx, k, "v", 0).Err()
			if err == nil {
				err = rl.Del(ctx, k).Err()
			}
		}
		if err != nil {
			t.Fatalf("write %s: %v", k, err)
		}
	}
	n2 := newProc(t, "n2", "--join", leader.Peer)
	n2.start()
	c.waitFor("n2 streams", 60*time.Second, func() bool {
		st, err := n2.status()
		return err == nil && st.State == "streaming"
	})
	if !strings.Contains(n2.Log.String(), "snapshot installed") {
		t.Fatalf("n2 joined without installing a snapshot")
	}
	r2 := n2.redis()
	same := func(want int64, expires string) {
		t.Helper()
		c.waitCaughtUp(leader, n2)
		for _, r := range []*procClient{{"n1", rl}, {"n2", r2}} {
			n, err := r.c.DBSize(ctx).Result()
			if err != nil || n != want {
				t.Fatalf("%s DBSIZE = %d, %v; want %d", r.id, n, err, want)
			}
			info, err := r.c.Info(ctx, "keyspace").Result()
			if err != nil {
				t.Fatalf("%s INFO keyspace: %v", r.id, err)
			}
			line := "db0:keys=" + strconv.FormatInt(want, 10) + ",expires=" + expires + ",avg_ttl=0"
			if want == 0 {
				line = ""
			}
			if !strings.Contains(info, line) || (want == 0 && strings.Contains(info, "db0:")) {
				t.Fatalf("%s INFO keyspace %q, want %q", r.id, info, line)
			}
		}
	}
	same(200, "100")
	if err := rl.Del(ctx, "k0", "k1", "k2", "nokey").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rl.MSet(ctx, "new1", "a", "new2", "b").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rl.Persist(ctx, "k4").Err(); err != nil {
		t.Fatal(err)
	}
	same(200, "98") // -k0 -k1 +new1 +new2; k1 and k4 no longer expire
	if err := rl.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	same(0, "0")
}

type procClient struct {
	id string
	c  *redis.Client
}
