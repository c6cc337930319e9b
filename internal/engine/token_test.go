package engine

import (
	"errors"
	"testing"
)

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "3:120", want: "3:120"},
		{in: " 3:120 ", want: "3:120"},
		{in: "eu:120,us:98", want: "eu:120,us:98"},
		{in: "us:98,eu:120", want: "eu:120,us:98"}, // canonical order
		{in: "eu:1", want: "eu:1"},
		{in: "120", bad: true},
		{in: "3:x", bad: true},
		{in: "eu:x", bad: true},
		{in: "eu:1,eu:2", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseToken(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadToken) {
				t.Errorf("ParseToken(%q) = %v, %v; want ErrBadToken", tc.in, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseToken(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLaterMergesVectors(t *testing.T) {
	a, _ := ParseToken("eu:120,us:98")
	b, _ := ParseToken("us:99,ap:4")
	b.Epoch, b.LSN = 2, 77
	got := a.Later(b)
	if got.String() != "ap:4,eu:120,us:99" {
		t.Fatalf("Later = %s", got)
	}
	if got.Epoch != 2 || got.LSN != 77 {
		t.Fatalf("the site position was lost: %d:%d", got.Epoch, got.LSN)
	}
	if (Token{}).Later(a).String() != a.String() {
		t.Fatal("the zero token is not neutral")
	}
	if !(Token{}).IsZero() || a.IsZero() {
		t.Fatal("IsZero")
	}
}
