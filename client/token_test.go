package client

import "testing"

func TestLaterToken(t *testing.T) {
	for _, tc := range []struct{ cur, tok, want string }{
		{"", "3:10", "3:10"},
		{"3:10", "3:9", "3:10"},
		{"3:10", "4:2", "4:2"},
		{"3:10", "junk", "3:10"},
		{"", "eu:5", "eu:5"},
		{"eu:5,us:3", "us:7,ap:1", "ap:1,eu:5,us:7"},
		{"eu:5", "eu:4", "eu:5"},
	} {
		if got := laterToken(tc.cur, tc.tok); got != tc.want {
			t.Errorf("laterToken(%q, %q) = %q, want %q", tc.cur, tc.tok, got, tc.want)
		}
	}
}
