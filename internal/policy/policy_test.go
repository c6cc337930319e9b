package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in        string
		want      Commit
		canonical string
	}{
		{"", Commit{Kind: Async}, "async"},
		{"  ", Commit{Kind: Async}, "async"},
		{"async", Commit{Kind: Async}, "async"},
		{"ASYNC", Commit{Kind: Async}, "async"},
		{"all", Commit{Kind: All}, "all"},
		{" All ", Commit{Kind: All}, "all"},
		{"FIRST 1 (n2,n3)", Commit{Kind: First, K: 1, Members: []string{"n2", "n3"}}, "FIRST 1 (n2,n3)"},
		{"first 2 ( n3 , n2 ,n4 )", Commit{Kind: First, K: 2, Members: []string{"n3", "n2", "n4"}}, "FIRST 2 (n3,n2,n4)"},
		{"FIRST 1(n2)", Commit{Kind: First, K: 1, Members: []string{"n2"}}, "FIRST 1 (n2)"},
		{"ANY 2 (n2, n3)", Commit{Kind: Any, K: 2, Members: []string{"n2", "n3"}}, "ANY 2 (n2,n3)"},
		{"any 1 (n2,n3)", Commit{Kind: Any, K: 1, Members: []string{"n2", "n3"}}, "ANY 1 (n2,n3)"},
		{"FIRST 1 (*)", Commit{Kind: First, K: 1}, "FIRST 1 (*)"},
		{"ANY 2 ( * )", Commit{Kind: Any, K: 2}, "ANY 2 (*)"},
		{"FIRST 1", Commit{Kind: First, K: 1}, "FIRST 1 (*)"},
		{"ANY 3", Commit{Kind: Any, K: 3}, "ANY 3 (*)"},
		{"1 (n2,n3)", Commit{Kind: First, K: 1, Members: []string{"n2", "n3"}}, "FIRST 1 (n2,n3)"},
		{"2 (*)", Commit{Kind: First, K: 2}, "FIRST 2 (*)"},
		{"FIRST 1 (N2,n2)", Commit{Kind: First, K: 1, Members: []string{"N2", "n2"}}, "FIRST 1 (N2,n2)"},
		{"ANY 1 (node-2.dc1,node_3)", Commit{Kind: Any, K: 1, Members: []string{"node-2.dc1", "node_3"}}, "ANY 1 (node-2.dc1,node_3)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCommit(tt.in)
			if err != nil {
				t.Fatalf("ParseCommit(%q): %v", tt.in, err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("ParseCommit(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.canonical {
				t.Fatalf("String() = %q, want %q", s, tt.canonical)
			}
			again, err := ParseCommit(got.String())
			if err != nil || !again.Equal(got) {
				t.Fatalf("round trip of %q: %#v, %v", got.String(), again, err)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			b, _ := got.MarshalText()
			var u Commit
			if err := u.UnmarshalText(b); err != nil || !u.Equal(got) {
				t.Fatalf("text round trip: %#v, %v", u, err)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"FIRST 3 (n2,n3)", "FIRST 3 (n2,n3): k exceeds the 2 listed members"},
		{"ANY 2 (n2)", "ANY 2 (n2): k exceeds the 1 listed member"},
		{"FIRST 0 (n2,n3)", "FIRST 0 (n2,n3): k must be >= 1"},
		{"ANY -1 (n2)", "ANY -1 (n2): k must be >= 1"},
		{"0 (n2)", "0 (n2): k must be >= 1"},
		{"FIRST x (n2)", `FIRST x (n2): k must be a whole number, got "x"`},
		{"FIRST 99999999999999999999 (n2)", "k 99999999999999999999 is out of range"},
		{"FIRST 1 (n2,n3", "FIRST 1 (n2,n3: unbalanced parentheses"},
		{"FIRST 1 n2,n3)", "unbalanced parentheses"},
		{"FIRST 1 )n2(", "unbalanced parentheses"},
		{"FIRST 1 ((n2))", "only one parenthesised member list is allowed"},
		{"FIRST 1 (n2) (n3)", "only one parenthesised member list is allowed"},
		{"FIRST 1 (n2) extra", `unexpected "extra" after the member list`},
		{"FIRST 1 (n2,,n3)", "FIRST 1 (n2,,n3): empty member name"},
		{"FIRST 1 (n2,)", "empty member name"},
		{"FIRST 1 ()", "empty member list"},
		{"FIRST 1 (n2,n2)", `duplicate member "n2"`},
		{"ANY 1 (*,n2)", "* must be the only entry of the member list"},
		{"ANY 1 (n 2)", `invalid member name "n 2"`},
		{`ANY 1 ("n2")`, `invalid member name "\"n2\""`},
		{"LAST 1 (n2)", `unknown method "LAST" (want FIRST or ANY)`},
		{"FIRST (n2)", "missing k after FIRST"},
		{"ANY", "missing k after ANY"},
		{"(n2,n3)", "missing method and k"},
		{"sync", "unknown policy (want async, all, FIRST k (…) or ANY k (…))"},
		{"FIRST 1 2 (n2)", `unexpected "2" before the member list`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseCommit(tt.in)
			if err == nil {
				t.Fatalf("ParseCommit(%q) = %v, want error", tt.in, p)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	bad := []Commit{
		{Kind: First, K: 0},
		{Kind: Any, K: 3, Members: []string{"n2", "n3"}},
		{Kind: Any, K: 1, Members: []string{}},
		{Kind: Any, K: 1, Members: []string{"a,b"}},
		{Kind: First, K: 1, Members: []string{"n2", "n2"}},
		{Kind: All, K: 1},
		{Kind: Kind(9)},
	}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%#v) = nil, want error", p)
		}
	}
	if s := (Commit{Kind: Kind(9)}).String(); s != "Kind(9)" {
		t.Errorf("String of unknown kind = %q", s)
	}
}

func TestPolicyAckLevelAndFallback(t *testing.T) {
	acks := []struct {
		in   string
		want Ack
	}{
		{"received", AckReceived}, {"remote_write", AckReceived}, {"RECEIVED", AckReceived},
		{"durable", AckDurable}, {"on", AckDurable}, {"", AckDurable}, {" Durable ", AckDurable},
		{"applied", AckApplied}, {"remote_apply", AckApplied},
	}
	for _, tt := range acks {
		got, err := ParseAck(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAck(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		again, err := ParseAck(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %v: %v, %v", got, again, err)
		}
	}
	if _, err := ParseAck("off"); err == nil || !strings.Contains(err.Error(), "want received, durable or applied") {
		t.Errorf("ParseAck(off) error = %v", err)
	}
	if s := Ack(7).String(); s != "Ack(7)" {
		t.Errorf("Ack(7).String() = %q", s)
	}

	fbs := []struct {
		in   string
		want Fallback
	}{{"block", FallbackBlock}, {"", FallbackBlock}, {"ASYNC", FallbackAsync}, {"async", FallbackAsync}}
	for _, tt := range fbs {
		got, err := ParseFallback(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFallback(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		again, err := ParseFallback(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %v: %v, %v", got, again, err)
		}
	}
	if _, err := ParseFallback("wait"); err == nil || !strings.Contains(err.Error(), "want block or async") {
		t.Errorf("ParseFallback(wait) error = %v", err)
	}

	var a Ack
	if err := a.UnmarshalText([]byte("remote_apply")); err != nil || a != AckApplied {
		t.Errorf("UnmarshalText: %v %v", a, err)
	}
	if b, _ := a.MarshalText(); string(b) != "applied" {
		t.Errorf("MarshalText = %q", b)
	}
	var f Fallback
	if err := f.UnmarshalText([]byte("async")); err != nil || f != FallbackAsync {
		t.Errorf("UnmarshalText: %v %v", f, err)
	}
	if b, _ := f.MarshalText(); string(b) != "async" {
		t.Errorf("MarshalText = %q", b)
	}
	if err := f.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(nope) succeeded")
	}
}
