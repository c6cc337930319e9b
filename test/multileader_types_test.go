package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// mlTypeShow renders what a key holds on one site, the same way for every
// site: its type and contents in a canonical order ("hash a=1 b=2",
// "set x y", "zset m=5", "string v", "none").
func mlTypeShow(ctx context.Context, c *redis.Client, key string) (string, error) {
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		return "", err
	}
	var parts []string
	switch typ {
	case "none":
		return "none", nil
	case "string":
		v, err := c.Get(ctx, key).Result()
		if err != nil {
			return "", err
		}
		return "string " + v, nil
	case "hash":
		m, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			return "", err
		}
		for f, v := range m {
			parts = append(parts, f+"="+v)
		}
	case "set":
		m, err := c.SMembers(ctx, key).Result()
		if err != nil {
			return "", err
		}
		parts = m
	case "zset":
		zs, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil {
			return "", err
		}
		for _, z := range zs {
			parts = append(parts, fmt.Sprintf("%v=%v", z.Member, z.Score))
		}
	default:
		return "", fmt.Errorf("key %s: unexpected type %q", key, typ)
	}
	sort.Strings(parts)
	return strings.TrimSpace(typ + " " + strings.Join(parts, " ")), nil
}

// mlTypeSnapshot is mlTypeShow for every key of want, as one text.
func mlTypeSnapshot(ctx context.Context, c *redis.Client, keys []string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range keys {
		s, err := mlTypeShow(ctx, c, k)
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

// mlClockPast waits until the wall clock is past the millisecond of t0:
// sites on one machine share it, so a write issued after this carries a
// newer hybrid-logical-clock stamp than one acknowledged before t0.
func mlClockPast(t *testing.T, t0 time.Time) {
	t.Helper()
	waitFor(t, "the clock to pass "+t0.String(), time.Second, func() bool {
		return time.Now().UnixMilli() > t0.UnixMilli()
	})
}

// TestMultiLeaderCollectionsConverge: three sites write hashes, sets and
// sorted sets of the same keys while unlinked (every write concurrent
// with the others'), then link all-to-all. Every site ends with the same
// state, and it is the documented winner: fields and members merge, a
// field or member's newest write wins, an add survives a remove that did
// not see it, a DEL clears only what is older, and between a string and
// a collection the newer write is what the key holds, the loser recorded
// as a conflict.
func TestMultiLeaderCollectionsConverge(t *testing.T) {
	sites := startSites(t, "eu", "us", "ap")
	names := []string{"eu", "us", "ap"}
	eu, us, ap := sites[0].redis(), sites[1].redis(), sites[2].redis()
	ctx := ctxT(t, 90*time.Second)
	must := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	converge := func(what string, want map[string]string) {
		t.Helper()
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		mltWaitFor(t, what, 30*time.Second, func() (bool, string) {
			var seen []string
			ok := true
			for i, c := range []*redis.Client{eu, us, ap} {
				got, err := mlTypeSnapshot(ctx, c, keys)
				if err != nil {
					return false, err.Error()
				}
				if d := mltDiff(want, got); d != "" {
					ok = false
					seen = append(seen, names[i]+": "+d)
				}
			}
			return ok, strings.Join(seen, "\n  ")
		})
	}

	// The state every site shares before the concurrent writes.
	linkAll(t, sites)
	must(eu, "HSET", "hdel-newer", "f", "0")
	must(eu, "HSET", "hset-newer", "f", "0")
	must(eu, "SADD", "set", "x")
	must(eu, "HSET", "del-vs-hset", "old", "1")
	converge("the shared base on every site", map[string]string{
		"hdel-newer": "hash f=0", "hset-newer": "hash f=0", "set": "set x", "del-vs-hset": "hash old=1"})
	for i, s := range sites {
		for j, o := range names {
			if i != j {
				removeLink(t, s, o)
			}
		}
	}

	// Concurrent writes: eu first, then (the clock past eu's) us and ap.
	must(eu, "HSET", "fields", "a", "1")
	must(eu, "HSET", "hdel-newer", "f", "1")
	must(eu, "HDEL", "hset-newer", "f")
	must(eu, "SREM", "set", "x")
	must(eu, "SADD", "set", "x") // a new add, which us's SREM does not see
	must(eu, "ZADD", "zset", "1", "m")
	must(eu, "DEL", "del-vs-hset")
	must(eu, "SET", "str-then-hash", "s")
	must(eu, "HSET", "hash-then-str", "f", "1")
	mlClockPast(t, time.Now())
	must(us, "HSET", "fields", "b", "2")
	must(us, "HDEL", "hdel-newer", "f")
	must(us, "HSET", "hset-newer", "f", "2")
	must(us, "SREM", "set", "x")
	must(ap, "SADD", "set", "y")
	must(us, "ZADD", "zset", "5", "m")
	must(us, "HSET", "del-vs-hset", "new", "1")
	must(us, "HSET", "str-then-hash", "f", "1")
	must(ap, "SET", "hash-then-str", "s")

	linkAll(t, sites)
	converge("every site holds the documented winners", map[string]string{
		"fields":        "hash a=1 b=2",
		"hdel-newer":    "none",
		"hset-newer":    "hash f=2",
		"set":           "set x y",
		"zset":          "zset m=5",
		"del-vs-hset":   "hash new=1",
		"str-then-hash": "hash f=1",
		"hash-then-str": "string s",
	})

	// The string that lost to a hash is a conflict on eu (which wrote it)
	// and the hash that lost to a string one on ap.
	for _, tc := range []struct {
		site          *proc
		key, loser    string
		winner, where string
	}{
		{sites[0], "str-then-hash", "s", "(hash)", "eu"},
		{sites[2], "hash-then-str", "(hash)", "s", "ap"},
	} {
		mltWaitFor(t, tc.where+" records the conflict on "+tc.key, 10*time.Second, func() (bool, string) {
			resp, err := http.Get("http://" + tc.site.HTTP + "/v1/conflicts?limit=100")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			var body struct {
				Conflicts []struct {
					Key    string `json:"key"`
					Winner struct {
						Value string `json:"value"`
					} `json:"winner"`
					Loser struct {
						Value string `json:"value"`
					} `json:"loser"`
				} `json:"conflicts"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				return false, err.Error()
			}
			for _, c := range body.Conflicts {
				if c.Key == tc.key && c.Loser.Value == tc.loser && c.Winner.Value == tc.winner {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", body.Conflicts)
		})
	}

	// A DEL of a hash leaves a tombstone that every site collects once all
	// have it; the key stays gone on every site, and a new HSET starts a
	// hash from nothing (the collected fields do not come back).
	must(ap, "DEL", "fields")
	mltWaitFor(t, "every site collects its tombstones", 30*time.Second, func() (bool, string) {
		var seen []string
		ok := true
		for i, s := range sites {
			n := metricValue(s, "replicant_tombstones")
			seen = append(seen, fmt.Sprintf("%s: %v", names[i], n))
			ok = ok && n == 0
		}
		return ok, strings.Join(seen, ", ")
	})
	must(us, "HSET", "fields", "c", "3")
	// del-vs-hset holds a tombstone too, but with a field written after
	// it: not collectible, it keeps that field.
	converge("a hash created again after its tombstone was collected", map[string]string{
		"fields": "hash c=3", "del-vs-hset": "hash new=1", "hdel-newer": "none", "set": "set x y"})

	// Lists cannot converge: refused with the mode named, nothing written.
	if err := eu.LPush(ctx, "list", "a").Err(); err == nil || !strings.Contains(err.Error(), "multi-leader") {
		t.Fatalf("LPUSH = %v, want a refusal naming the mode", err)
	}
	// INCR of a hash is WRONGTYPE, as in Redis.
	if err := eu.Incr(ctx, "fields").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Fatalf("INCR of a hash = %v, want WRONGTYPE", err)
	}
}
