package crdt

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
)

func ts(wall int64, logical uint32) Timestamp { return Timestamp{WallMs: wall, Logical: logical} }

func TestTimestampEncodingSortsLikeCompare(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := timestampGen().Draw(t, "a"), timestampGen().Draw(t, "b")
		ea, eb := mustEncode(t, a), mustEncode(t, b)
		if len(ea) != TimestampSize {
			t.Fatalf("encoding of %v is %d bytes", a, len(ea))
		}
		if got, want := bytes.Compare(ea, eb), a.Compare(b); got != want {
			t.Fatalf("bytes.Compare(enc %v, enc %v) = %d, Compare = %d", a, b, got, want)
		}
		if a.Less(b) != (a.Compare(b) < 0) || a.Compare(b) != -b.Compare(a) {
			t.Fatalf("Less/Compare disagree for %v, %v", a, b)
		}
		got, err := DecodeTimestamp(ea)
		if err != nil || got != a {
			t.Fatalf("DecodeTimestamp(enc %v) = %v, %v", a, got, err)
		}
	})
}

func TestDecodeTimestampRejectsWrongLength(t *testing.T) {
	for _, n := range []int{0, 1, TimestampSize - 1, TimestampSize + 1} {
		if _, err := DecodeTimestamp(make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeTimestamp(%d bytes) error = %v, want ErrMalformed", n, err)
		}
	}
}

func TestStampOrder(t *testing.T) {
	cases := []struct {
		a, b Stamp
		want int
	}{
		{Stamp{ts(5, 0), "us"}, Stamp{ts(5, 1), "eu"}, -1}, // time first
		{Stamp{ts(6, 0), "eu"}, Stamp{ts(5, 9), "us"}, 1},
		{Stamp{ts(5, 1), "eu"}, Stamp{ts(5, 1), "us"}, -1}, // then site
		{Stamp{ts(5, 1), "us"}, Stamp{ts(5, 1), "us"}, 0},
	}
	for _, c := range cases {
		if got := c.a.Compare(c.b); got != c.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := c.b.Compare(c.a); got != -c.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
	if got := (Stamp{ts(1700000000123, 2), "eu"}).String(); got != "1700000000123,2@eu" {
		t.Errorf("String = %q", got)
	}
}

func TestClockNow(t *testing.T) {
	c := NewClock(0)
	steps := []struct {
		phys int64
		want Timestamp
	}{
		{100, ts(100, 0)},
		{100, ts(100, 1)}, // same millisecond: logical tick
		{90, ts(100, 2)},  // physical clock stepped back: still increasing
		{101, ts(101, 0)}, // physical time passed the clock: logical resets
		{math.MinInt64, ts(101, 1)},
	}
	for i, s := range steps {
		if got := c.Now(s.phys); got != s.want {
			t.Fatalf("step %d: Now(%d) = %v, want %v", i, s.phys, got, s.want)
		}
	}
	if c.Last() != ts(101, 1) {
		t.Fatalf("Last = %v", c.Last())
	}
}

func TestClockUpdate(t *testing.T) {
	cases := []struct {
		name   string
		last   Timestamp
		remote Timestamp
		phys   int64
		want   Timestamp
	}{
		{"physical time ahead of both", ts(10, 3), ts(12, 7), 20, ts(20, 0)},
		{"remote ahead", ts(10, 3), ts(15, 7), 12, ts(15, 8)},
		{"local ahead", ts(15, 3), ts(12, 7), 12, ts(15, 4)},
		{"same wall, remote logical higher", ts(15, 3), ts(15, 7), 12, ts(15, 8)},
		{"same wall, local logical higher", ts(15, 9), ts(15, 7), 12, ts(15, 10)},
		{"all three equal", ts(15, 2), ts(15, 2), 15, ts(15, 3)},
		{"remote logical exhausted borrows a millisecond", ts(10, 0), ts(15, math.MaxUint32), 12, ts(16, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := NewClock(100)
			clk.Restore(c.last)
			got, err := clk.Update(c.remote, c.phys)
			if err != nil || got != c.want {
				t.Fatalf("Update(%v, %d) = %v, %v; want %v", c.remote, c.phys, got, err, c.want)
			}
			if clk.Last() != got {
				t.Fatalf("Last = %v after Update returned %v", clk.Last(), got)
			}
		})
	}
}

func TestClockUpdateRefusesSkew(t *testing.T) {
	clk := NewClock(500)
	clk.Now(1000)
	before := clk.Last()
	_, err := clk.Update(ts(1501, 0), 1000)
	var skew *ClockSkewError
	if !errors.As(err, &skew) {
		t.Fatalf("Update 501ms ahead: err = %v, want *ClockSkewError", err)
	}
	if skew.AheadMs() != 501 || skew.MaxOffsetMs != 500 || skew.Remote != ts(1501, 0) || skew.PhysMs != 1000 {
		t.Fatalf("skew error = %+v", skew)
	}
	if clk.Last() != before {
		t.Fatalf("refused update moved the clock from %v to %v", before, clk.Last())
	}
	// Exactly the maximum offset is accepted.
	if got, err := clk.Update(ts(1500, 4), 1000); err != nil || got != ts(1500, 5) {
		t.Fatalf("Update 500ms ahead = %v, %v", got, err)
	}
	// The check is against physical time, not the clock: the clock is now
	// 500ms ahead, and a remote 1ms beyond it is still 501ms ahead of
	// physical time.
	if _, err := clk.Update(ts(1501, 0), 1000); !errors.As(err, &skew) {
		t.Fatalf("err = %v, want *ClockSkewError", err)
	}
	// Extreme values do not overflow the check.
	if _, err := clk.Update(ts(math.MaxInt64, 0), math.MinInt64); !errors.As(err, &skew) || skew.AheadMs() != math.MaxUint64 {
		t.Fatalf("err = %v", err)
	}
	// Without a maximum offset, anything is accepted.
	free := NewClock(0)
	if got, err := free.Update(ts(math.MaxInt64-1, 0), 0); err != nil || got != ts(math.MaxInt64-1, 1) {
		t.Fatalf("unchecked Update = %v, %v", got, err)
	}
}

func TestClockExhaustion(t *testing.T) {
	clk := NewClock(0)
	clk.Restore(ts(math.MaxInt64, math.MaxUint32-1))
	if got := clk.Now(0); got != ts(math.MaxInt64, math.MaxUint32) {
		t.Fatalf("Now = %v", got)
	}
	if _, err := clk.Update(ts(1, 0), 0); !errors.Is(err, ErrClockExhausted) {
		t.Fatalf("Update at the top: err = %v, want ErrClockExhausted", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Now at the top did not panic")
		}
	}()
	clk.Now(0)
}

// TestClockMonotonic drives a clock with arbitrary physical readings
// (forwards, backwards, stalled), remote timestamps and restores, and
// checks the HLC guarantees after every step.
func TestClockMonotonic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		maxOffset := rapid.OneOf(rapid.Just[int64](0), rapid.Int64Range(1, 1000)).Draw(t, "maxOffset")
		clk := NewClock(maxOffset)
		// Wall times stay far from the int64 ends (TestClockExhaustion
		// covers those); logical times include the carry edge.
		wall := rapid.Int64Range(-5000, 5000)
		logical := rapid.OneOf(rapid.Uint32Range(0, 3), rapid.Just[uint32](math.MaxUint32))
		var prev Timestamp // a new clock's Last: zero, below anything issued
		// A new clock starts at the zero timestamp, like a restore to it.
		maxPhys, maxRestored := int64(math.MinInt64), int64(0)
		for i := range rapid.IntRange(1, 60).Draw(t, "steps") {
			phys := wall.Draw(t, "phys")
			maxPhys = max(maxPhys, phys)
			var got Timestamp
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0:
				floor := Timestamp{wall.Draw(t, "floorWall"), logical.Draw(t, "floorLogical")}
				clk.Restore(floor)
				maxRestored = max(maxRestored, floor.WallMs)
				if clk.Last().Less(floor) || clk.Last().Less(prev) {
					t.Fatalf("step %d: Restore(%v) left the clock at %v (was %v)", i, floor, clk.Last(), prev)
				}
				prev = clk.Last()
				continue
			case 1, 2:
				got = clk.Now(phys)
			default:
				remote := Timestamp{wall.Draw(t, "remoteWall"), logical.Draw(t, "remoteLogical")}
				before := clk.Last()
				var err error
				got, err = clk.Update(remote, phys)
				if err != nil {
					var skew *ClockSkewError
					if !errors.As(err, &skew) || maxOffset == 0 || remote.WallMs-phys <= maxOffset {
						t.Fatalf("step %d: Update(%v, %d) with max offset %d: unexpected error %v", i, remote, phys, maxOffset, err)
					}
					if clk.Last() != before {
						t.Fatalf("step %d: refused Update moved the clock", i)
					}
					continue
				}
				if maxOffset > 0 && remote.WallMs-phys > maxOffset {
					t.Fatalf("step %d: Update(%v, %d) accepted a remote %dms ahead (max %d)", i, remote, phys, remote.WallMs-phys, maxOffset)
				}
				if !remote.Less(got) {
					t.Fatalf("step %d: Update(%v, %d) = %v, not after the remote", i, remote, phys, got)
				}
			}
			if !prev.Less(got) {
				t.Fatalf("step %d: timestamp %v does not follow %v", i, got, prev)
			}
			if got.WallMs < phys {
				t.Fatalf("step %d: timestamp %v is behind physical time %d", i, got, phys)
			}
			if clk.Last() != got {
				t.Fatalf("step %d: Last = %v, issued %v", i, clk.Last(), got)
			}
			// The HLC bound: the clock stays within the max offset (plus
			// one millisecond for a logical carry) of the physical
			// times it was given, unless a restore put it further.
			if maxOffset > 0 && got.WallMs > max(maxPhys+maxOffset+1, maxRestored+1) {
				t.Fatalf("step %d: clock %v ran ahead of physical time %d by more than %d", i, got, maxPhys, maxOffset)
			}
			prev = got
		}
	})
}
