package convergent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/datatype/memstate"
	"github.com/replicant-db/replicant/internal/engine"
)

// The metamorphic test: the same commands, written with package datatype
// as the resp handlers write them, run on the single-leader layout
// (memstate) and, through the adapter, on one convergent site; every
// reply and every key's type, expiry and content must agree after each
// write. A write runs one to three commands, as a MULTI does, so reads of
// a collection the same transaction changed (before its Coll is put) are
// checked too.

const testMode = "test-convergent"

var modelKeys = []string{"a", "b", "c"}

type modelOp struct {
	name string
	args []string
	n    float64
	seed uint64
}

func (o modelOp) String() string {
	return fmt.Sprintf("%s %s %v", o.name, strings.Join(o.args, " "), o.n)
}

func drawOp(t *rapid.T) modelOp {
	key := rapid.SampledFrom(modelKeys)
	elem := rapid.SampledFrom([]string{"m1", "m2", "m3", "m4", ""})
	val := rapid.SampledFrom([]string{"x", "y", ""})
	name := rapid.SampledFrom([]string{"hset", "hdel", "sadd", "srem", "spop", "zadd", "zincr", "zrem", "zpopmin",
		"zpopmax", "del", "set", "rename", "copy", "expire", "persist", "sunionstore", "sinterstore", "zunionstore",
		"incr", "tick"}).Draw(t, "op")
	o := modelOp{name: name}
	switch name {
	case "hset":
		o.args = []string{key.Draw(t, "k"), elem.Draw(t, "f"), val.Draw(t, "v")}
	case "hdel", "sadd", "srem", "zrem":
		o.args = []string{key.Draw(t, "k"), elem.Draw(t, "m")}
	case "zadd", "zincr":
		o.args = []string{key.Draw(t, "k"), elem.Draw(t, "m")}
		o.n = float64(rapid.IntRange(-3, 3).Draw(t, "score"))
	case "spop", "zpopmin", "zpopmax":
		o.args = []string{key.Draw(t, "k")}
		o.n = float64(rapid.IntRange(1, 5).Draw(t, "count"))
		o.seed = rapid.Uint64().Draw(t, "seed")
	case "del", "persist", "incr":
		o.args = []string{key.Draw(t, "k")}
	case "set":
		o.args = []string{key.Draw(t, "k"), val.Draw(t, "v")}
	case "rename", "copy", "sunionstore", "sinterstore", "zunionstore":
		o.args = []string{key.Draw(t, "dst"), key.Draw(t, "src"), key.Draw(t, "src2")}
	case "expire":
		o.args = []string{key.Draw(t, "k")}
		o.n = float64(rapid.IntRange(-5, 50).Draw(t, "ms"))
	case "tick":
		o.n = float64(rapid.IntRange(1, 30).Draw(t, "ms"))
	}
	return o
}

// apply runs one command on tx and renders its reply. Errors that are a
// command's own reply (WRONGTYPE) are rendered; others are returned.
func apply(tx engine.Txn, o modelOp) (string, error) {
	out, err := applyCmd(tx, o)
	if errors.Is(err, datatype.ErrWrongType) {
		return "WRONGTYPE", nil
	}
	return out, err
}

func applyCmd(tx engine.Txn, o modelOp) (string, error) {
	k := func(i int) []byte { return []byte(o.args[i]) }
	switch o.name {
	case "hset":
		h, err := datatype.Open(tx, k(0), engine.TypeHash)
		if err != nil {
			return "", err
		}
		created, err := datatype.HashSet(h, k(1), k(2))
		if err != nil {
			return "", err
		}
		return fmt.Sprint(created), h.Save()
	case "hdel", "srem":
		typ := engine.TypeHash
		if o.name == "srem" {
			typ = engine.TypeSet
		}
		c, err := datatype.Open(tx, k(0), typ)
		if err != nil {
			return "", err
		}
		var found bool
		if typ == engine.TypeHash {
			found, err = datatype.HashDel(c, k(1))
		} else {
			found, err = datatype.SetRem(c, k(1))
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprint(found), c.Save()
	case "sadd":
		c, err := datatype.Open(tx, k(0), engine.TypeSet)
		if err != nil {
			return "", err
		}
		added, err := datatype.SetAdd(c, k(1))
		if err != nil {
			return "", err
		}
		return fmt.Sprint(added), c.Save()
	case "spop":
		c, err := datatype.Open(tx, k(0), engine.TypeSet)
		if err != nil {
			return "", err
		}
		got, err := datatype.SetPop(c, rand.New(rand.NewPCG(o.seed, 1)), int64(o.n))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%q", got), c.Save()
	case "zadd", "zincr":
		z, err := datatype.OpenZSet(tx, k(0))
		if err != nil {
			return "", err
		}
		res, err := z.Add(k(1), o.n, datatype.ZAddFlags{Incr: o.name == "zincr"})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%+v", res), z.Save()
	case "zrem":
		z, err := datatype.OpenZSet(tx, k(0))
		if err != nil {
			return "", err
		}
		found, err := z.Remove(k(1))
		if err != nil {
			return "", err
		}
		return fmt.Sprint(found), z.Save()
	case "zpopmin", "zpopmax":
		z, err := datatype.OpenZSet(tx, k(0))
		if err != nil {
			return "", err
		}
		es, err := z.Pop(int64(o.n), o.name == "zpopmax")
		if err != nil {
			return "", err
		}
		return renderZ(es), z.Save()
	case "del":
		_, ok, err := tx.Get(k(0))
		if err != nil || !ok {
			return "0", err
		}
		tx.Del(k(0))
		return "1", nil
	case "set":
		tx.Set(k(0), k(1), 0)
		return "OK", nil
	case "incr":
		if ct, ok := tx.(engine.CounterTxn); ok {
			n, err := ct.IncrBy(k(0), 1)
			if errors.Is(err, engine.ErrNotInteger) {
				return "NOTINT", nil
			}
			return fmt.Sprint(n), err
		}
		v, ok, err := tx.Get(k(0))
		if err != nil {
			return "", err
		}
		n := int64(0)
		if ok {
			if v.Type != engine.TypeString {
				return "", datatype.ErrWrongType
			}
			if n, err = strconv.ParseInt(string(v.Value), 10, 64); err != nil {
				return "NOTINT", nil
			}
		}
		tx.Set(k(0), []byte(strconv.FormatInt(n+1, 10)), v.ExpireAt)
		return fmt.Sprint(n + 1), nil
	case "rename": // RENAME src dst, as resp's rename
		src, dst := k(1), k(0)
		v, ok, err := tx.Get(src)
		if err != nil || !ok {
			return "nokey", err
		}
		if string(src) == string(dst) {
			return "OK", nil
		}
		if v.Type != engine.TypeString {
			return "OK", datatype.Rename(tx, src, v, dst)
		}
		tx.Set(dst, v.Value, v.ExpireAt)
		tx.Del(src)
		return "OK", nil
	case "copy": // COPY src dst REPLACE
		src, dst := k(1), k(0)
		if string(src) == string(dst) {
			return "same", nil
		}
		v, ok, err := tx.Get(src)
		if err != nil || !ok {
			return "0", err
		}
		if v.Type != engine.TypeString {
			return "1", datatype.Copy(tx, src, v, dst)
		}
		tx.Set(dst, v.Value, v.ExpireAt)
		return "1", nil
	case "expire", "persist":
		v, ok, err := tx.Get(k(0))
		if err != nil || !ok {
			return "0", err
		}
		at := int64(0)
		if o.name == "expire" {
			at = tx.NowMs() + int64(o.n)
			if at <= tx.NowMs() {
				tx.Del(k(0))
				return "1", nil
			}
		}
		if v.Type != engine.TypeString {
			return "1", datatype.SetMeta(tx, k(0), v, at)
		}
		tx.Set(k(0), v.Value, at)
		return "1", nil
	case "sunionstore", "sinterstore":
		sc := tx.(datatype.Scanner)
		var views []*datatype.View
		for _, key := range [][]byte{k(1), k(2)} {
			v, found, err := datatype.Read(sc, key, engine.TypeSet)
			if err != nil {
				return "", err
			}
			if !found {
				v = nil
			}
			views = append(views, v)
		}
		var members [][]byte
		if o.name == "sunionstore" {
			var err error
			if members, err = datatype.SetUnion(views); err != nil {
				return "", err
			}
		} else if views[0] != nil && views[1] != nil {
			if err := datatype.SetInter(views, func(m []byte) bool {
				members = append(members, append([]byte(nil), m...))
				return true
			}); err != nil {
				return "", err
			}
		}
		return fmt.Sprint(len(members)), datatype.StoreSet(tx, k(0), members)
	case "zunionstore":
		sc := tx.(datatype.Scanner)
		var srcs []datatype.ZSource
		for _, key := range [][]byte{k(1), k(2)} {
			src, err := datatype.OpenZSource(sc, key)
			if err != nil {
				return "", err
			}
			srcs = append(srcs, src)
		}
		es, err := datatype.ZUnion(srcs, datatype.AggSum)
		if err != nil {
			return "", err
		}
		_, exists, err := tx.Get(k(0))
		if err != nil {
			return "", err
		}
		if exists {
			tx.Del(k(0))
		}
		if len(es) > 0 {
			z, err := datatype.OpenZSet(tx, k(0))
			if err != nil {
				return "", err
			}
			for _, e := range es {
				if err := z.PutNew(e); err != nil {
					return "", err
				}
			}
			if err := z.Save(); err != nil {
				return "", err
			}
		}
		return renderZ(es), nil
	}
	return "", fmt.Errorf("unknown op %s", o.name)
}

func renderZ(es []datatype.ZEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s=%v ", e.Member, e.Score)
	}
	return b.String()
}

// dump renders every model key as s shows it: type, expiry and content,
// the sorted sets by rank both ways and by member.
func dump(s datatype.Scanner, keys ...string) (string, error) {
	if keys == nil {
		keys = modelKeys
	}
	var b strings.Builder
	for _, key := range keys {
		v, ok, err := s.Get([]byte(key))
		if err != nil {
			return "", err
		}
		if !ok {
			fmt.Fprintf(&b, "%s: none\n", key)
			continue
		}
		fmt.Fprintf(&b, "%s: %s exp=%d ", key, v.Type, v.ExpireAt)
		switch v.Type {
		case engine.TypeString:
			fmt.Fprintf(&b, "%q", v.Value)
		case engine.TypeHash, engine.TypeSet:
			sub := datatype.SubField
			if v.Type == engine.TypeSet {
				sub = datatype.SubMember
			}
			view, _, err := datatype.Read(s, []byte(key), v.Type)
			if err != nil {
				return "", err
			}
			es, err := view.All(sub)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "len=%d", view.Meta.Len)
			for _, e := range es {
				fmt.Fprintf(&b, " %q=%q", e.Rest, e.Value)
			}
		case engine.TypeZSet:
			z, _, err := datatype.ReadZSet(s, []byte(key))
			if err != nil {
				return "", err
			}
			up, err := z.ByRank(0, z.Len()-1, false)
			if err != nil {
				return "", err
			}
			down, err := z.ByRank(0, z.Len()-1, true)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "len=%d up[%s] down[%s] each[", z.Len(), renderZ(up), renderZ(down))
			if err := z.Each(nil, func(m []byte, f float64) bool {
				fmt.Fprintf(&b, "%s=%v ", m, f)
				return true
			}); err != nil {
				return "", err
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func TestMatchesSingleLeader(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ref := &memstate.State{Clock: 1000}
		site := newSite("s1")
		for i := range rapid.IntRange(1, 40).Draw(t, "writes") {
			ops := rapid.SliceOfN(rapid.Custom(drawOp), 1, 3).Draw(t, fmt.Sprintf("write%d", i))
			var want, got, wantDumps []string
			for _, o := range ops {
				if o.name == "tick" {
					ref.Clock += int64(o.n)
					continue
				}
				r, err := apply(ref, o)
				if err != nil {
					t.Fatalf("single-leader %s: %v", o, err)
				}
				want = append(want, r)
				d, err := dump(ref)
				if err != nil {
					t.Fatal(err)
				}
				wantDumps = append(wantDumps, d)
			}
			before := map[string]int{}
			for k, n := range site.puts {
				before[k] = n
			}
			err := site.write(testMode, func(tx engine.Txn) error {
				got = got[:0]
				for _, o := range ops {
					if o.name == "tick" {
						site.now += int64(o.n)
						continue
					}
					r, err := apply(tx, o)
					if err != nil {
						return err
					}
					got = append(got, r)
					// Reads inside the write, before any Coll is put.
					inTx, err := dump(tx.(datatype.Scanner))
					if err != nil {
						return err
					}
					if want := wantDumps[len(got)-1]; inTx != want {
						t.Fatalf("inside the write, after %v:\nconvergent:\n%s\nsingle-leader:\n%s", ops[:len(got)], inTx, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("convergent %v: %v", ops, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%v: replies %v, single-leader %v", ops, got, want)
			}
			for k, n := range site.puts {
				if n-before[k] > 1 {
					t.Fatalf("%v: key %q put %d times in one write", ops, k, n-before[k])
				}
			}
			refDump, err := dump(ref)
			if err != nil {
				t.Fatal(err)
			}
			gotDump, err := dump(site.reader(testMode).(datatype.Scanner))
			if err != nil {
				t.Fatal(err)
			}
			if gotDump != refDump {
				t.Fatalf("after %v:\nconvergent:\n%s\nsingle-leader:\n%s", ops, gotDump, refDump)
			}
		}
	})
}
