package httpapi

import (
	"net"
	"net/http"
)

// countConns returns the http.Server's ConnState hook that keeps
// replicant_connected_clients{api="http"}: a connection counts from when
// it is accepted until it is closed or hijacked (net/http reports exactly
// one of those for every new connection), as Redis counts a client from
// accept to close whether or not it sends anything. nil when the engine
// records no metrics.
func (s *Server) countConns() func(net.Conn, http.ConnState) {
	g := s.b.Metrics().ClientGauge("http")
	if g == nil {
		return nil
	}
	return func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			g.Inc()
		case http.StateHijacked, http.StateClosed:
			g.Dec()
		}
	}
}
