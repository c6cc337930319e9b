//go:build !linux

package resp

import (
	"errors"
	"net"
)

// Without epoll every connection has a goroutine waiting in Go's poller
// (evloop_linux.go explains the loop).

type evLoop struct{}

type fdConn struct {
	net.Conn
	fd     int
	client *client
}

func (s *Server) newLoop() *evLoop { return nil }

func (l *evLoop) adopt(net.Conn) (*fdConn, error) {
	return nil, errors.New("no event loop on this system")
}

func (l *evLoop) stop() {}

func (fc *fdConn) park(*client) bool { return false }

func (fc *fdConn) release() {}
