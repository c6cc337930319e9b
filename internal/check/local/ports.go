package local

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

// Ports hands out free loopback addresses, each once.
type Ports struct {
	mu           sync.Mutex
	used         map[int]bool
	lo, hi, next int
}

// Addrs reserves n distinct loopback addresses (127.0.0.1:port).
func (p *Ports) Addrs(n int) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used == nil {
		p.used = map[int]bool{}
		p.lo, p.hi = portRange()
		p.next = p.lo + rand.IntN(p.hi-p.lo)
	}
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > p.hi-p.lo {
			return nil, fmt.Errorf("local: no free port in %d-%d", p.lo, p.hi)
		}
		port := p.next
		if p.next++; p.next >= p.hi {
			p.next = p.lo
		}
		if p.used[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken by someone else
		}
		ln.Close()
		p.used[port] = true
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// portRange is [10000, start of the ephemeral range), at least 5000 wide.
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil && a-lo >= 5000 {
			hi = a
		}
	}
	return lo, hi
}
