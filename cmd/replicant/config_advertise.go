package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/replicant-db/replicant/internal/control"
)

// advertisedAddrs are the addresses this node gives others: the RESP and
// HTTP addresses land in the control plane (a follower's READONLY and 307
// name the leader's), the peer address is what a --join request and a
// one-node cluster record for other nodes to dial.
//
// They differ from the listen addresses in containers and behind NAT: a
// node listening on 0.0.0.0:6379 must not tell a client to go to
// [::]:6379.
type advertisedAddrs struct {
	resp, http, peer string
	notes            []string // how a default was chosen, for the log
}

// advertiseAll works out the three advertised addresses from the flags,
// the --initial-cluster list and the bound listeners. hostname is
// os.Hostname (a parameter for tests).
func advertiseAll(f serverFlags, initial []control.Member, respLn, httpLn, peerLn net.Addr, hostname func() (string, error)) (advertisedAddrs, error) {
	var out advertisedAddrs
	var err error
	if out.resp, err = advertised("--advertise-resp", f.advertiseRESP, respLn, hostname, &out.notes); err != nil {
		return out, err
	}
	if out.http, err = advertised("--advertise-http", f.advertiseHTTP, httpLn, hostname, &out.notes); err != nil {
		return out, err
	}
	// Bootstrap members dial each other at the --initial-cluster
	// addresses, so this node's entry there is its peer address; a second
	// name for it could only disagree.
	for _, m := range initial {
		if m.ID != f.id {
			continue
		}
		if f.advertisePeer != "" && f.advertisePeer != m.PeerAddr {
			return out, fmt.Errorf("--advertise-peer %s disagrees with this node's --initial-cluster entry %s=%s: the other nodes dial the --initial-cluster address; give the same address or drop --advertise-peer",
				f.advertisePeer, m.ID, m.PeerAddr)
		}
		out.peer = m.PeerAddr
		return out, nil
	}
	out.peer, err = advertised("--advertise-peer", f.advertisePeer, peerLn, hostname, &out.notes)
	return out, err
}

// advertised is one advertised address: the flag's value if given, else
// the listener's address, with this host's name in place of a wildcard
// IP (which no other machine can dial).
func advertised(flag, given string, ln net.Addr, hostname func() (string, error), notes *[]string) (string, error) {
	if given != "" {
		host, port, err := net.SplitHostPort(given)
		if err != nil {
			return "", fmt.Errorf("invalid %s %q: want HOST:PORT: %w", flag, given, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || host == "" {
			return "", fmt.Errorf("invalid %s %q: want a host and a port 1-65535 others can dial", flag, given)
		}
		return given, nil
	}
	tcp, ok := ln.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return ln.String(), nil
	}
	name, err := hostname()
	if err != nil || name == "" {
		return "", fmt.Errorf("%s not set, the listener %s takes every interface, and this host's name is unknown (%v): set %s", flag, ln, err, flag)
	}
	addr := net.JoinHostPort(name, strconv.Itoa(tcp.Port))
	*notes = append(*notes, fmt.Sprintf("advertising %s (this host's name; listening on %s); set %s to change it", addr, ln, flag))
	return addr, nil
}

// sortedKeys returns m's keys in order, for deterministic logs.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
