package main

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/replicant-db/replicant/internal/control"
)

func TestAdvertiseAll(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	host := func() (string, error) { return "n2.example", nil }
	noHost := func() (string, error) { return "", errors.New("no name") }
	initial := []control.Member{{ID: "n1", PeerAddr: "n1.internal:9081"}, {ID: "n2", PeerAddr: "n2.internal:9081"}}
	tests := []struct {
		name             string
		f                serverFlags
		initial          []control.Member
		resp, http, peer string // listen addresses
		hostname         func() (string, error)
		want             advertisedAddrs // notes not compared
		errPart          string
	}{
		{name: "specific listeners advertise themselves (the dev and test setups)", f: serverFlags{id: "n2"},
			resp: "127.0.0.1:6382", http: "127.0.0.1:8082", peer: "127.0.0.1:9082", hostname: host,
			want: advertisedAddrs{resp: "127.0.0.1:6382", http: "127.0.0.1:8082", peer: "127.0.0.1:9082"}},
		{name: "wildcards advertise the host name", f: serverFlags{id: "n2"},
			resp: "0.0.0.0:6379", http: "[::]:8080", peer: "0.0.0.0:9081", hostname: host,
			want: advertisedAddrs{resp: "n2.example:6379", http: "n2.example:8080", peer: "n2.example:9081"}},
		{name: "the initial-cluster entry is the peer address", f: serverFlags{id: "n2"}, initial: initial,
			resp: "0.0.0.0:6379", http: "0.0.0.0:8080", peer: "0.0.0.0:9081", hostname: host,
			want: advertisedAddrs{resp: "n2.example:6379", http: "n2.example:8080", peer: "n2.internal:9081"}},
		{name: "flags win", f: serverFlags{id: "n2", advertiseRESP: "db.example:16379", advertiseHTTP: "10.0.0.2:18080", advertisePeer: "n2.internal:9081"},
			initial: initial, resp: "0.0.0.0:6379", http: "0.0.0.0:8080", peer: "0.0.0.0:9081", hostname: noHost,
			want: advertisedAddrs{resp: "db.example:16379", http: "10.0.0.2:18080", peer: "n2.internal:9081"}},
		{name: "advertise-peer without initial-cluster (join)", f: serverFlags{id: "n4", advertisePeer: "n4.internal:9081"},
			initial: initial, resp: "127.0.0.1:6384", http: "127.0.0.1:8084", peer: "0.0.0.0:9081", hostname: noHost,
			want: advertisedAddrs{resp: "127.0.0.1:6384", http: "127.0.0.1:8084", peer: "n4.internal:9081"}},
		{name: "advertise-peer disagreeing with initial-cluster", f: serverFlags{id: "n1", advertisePeer: "elsewhere:9081"}, initial: initial,
			resp: "127.0.0.1:6381", http: "127.0.0.1:8081", peer: "127.0.0.1:9081", hostname: host,
			errPart: "--advertise-peer elsewhere:9081 disagrees with this node's --initial-cluster entry n1=n1.internal:9081"},
		{name: "wildcard without a host name", f: serverFlags{id: "n1"},
			resp: "0.0.0.0:6379", http: "127.0.0.1:8081", peer: "127.0.0.1:9081", hostname: noHost,
			errPart: "--advertise-resp not set"},
		{name: "advertise without port", f: serverFlags{id: "n1", advertiseHTTP: "db.example"},
			resp: "127.0.0.1:6381", http: "127.0.0.1:8081", peer: "127.0.0.1:9081", hostname: host,
			errPart: `invalid --advertise-http "db.example"`},
		{name: "advertise a wildcard port", f: serverFlags{id: "n1", advertiseRESP: "db.example:0"},
			resp: "127.0.0.1:6381", http: "127.0.0.1:8081", peer: "127.0.0.1:9081", hostname: host,
			errPart: "port 1-65535"},
		{name: "advertise without host", f: serverFlags{id: "n1", advertiseRESP: ":6379"},
			resp: "127.0.0.1:6381", http: "127.0.0.1:8081", peer: "127.0.0.1:9081", hostname: host,
			errPart: "want a host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := advertiseAll(tc.f, tc.initial, tcp(tc.resp), tcp(tc.http), tcp(tc.peer), tc.hostname)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("advertiseAll = %+v, %v; want an error containing %q", got, err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.resp != tc.want.resp || got.http != tc.want.http || got.peer != tc.want.peer {
				t.Fatalf("advertiseAll = %+v, want %+v", got, tc.want)
			}
		})
	}
}
