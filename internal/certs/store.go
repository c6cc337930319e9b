package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Files names the PEM files of a node's TLS material.
type Files struct {
	Cert string // this node's certificate chain (leaf first)
	Key  string // its private key
	CA   string // the CA certificate(s) that sign every member's certificate
}

// material is one consistent set read from Files.
type material struct {
	cert  tls.Certificate
	leaf  *x509.Certificate
	pool  *x509.CertPool
	stamp stamp
}

// stamp identifies the versions of the three files a set was read from.
type stamp [3]fileStamp

type fileStamp struct {
	size    int64
	modTime time.Time
}

// Store holds the current TLS material and reloads it on request.
type Store struct {
	files Files
	cur   atomic.Pointer[material]
	// reloadMu serialises reloads (SIGHUP and Watch may race); handshakes
	// never take it.
	reloadMu sync.Mutex
}

// Load reads files and checks that they form a usable set.
func Load(files Files) (*Store, error) {
	if files.Cert == "" || files.Key == "" || files.CA == "" {
		return nil, errors.New("certs: a certificate, its key and the CA are all needed")
	}
	s := &Store{files: files}
	m, err := read(files)
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// read loads one set and verifies it. The stamps are taken before the
// contents so that a file replaced while it is read looks changed to the
// next ReloadIfChanged rather than unchanged.
func read(files Files) (*material, error) {
	st, err := stampOf(files)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: load %s and %s: %w", files.Cert, files.Key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: parse %s: %w", files.Cert, err)
	}
	cert.Leaf = leaf
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		return nil, fmt.Errorf("certs: read CA: %w", err)
	}
	pool, n := x509.NewCertPool(), 0
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: parse CA %s: %w", files.CA, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", files.CA)
	}
	// A certificate the CA does not sign would be refused by every peer
	// at every handshake; say so once, at start-up or reload, instead.
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("certs: %s is not signed by the CA in %s: %w", files.Cert, files.CA, err)
	}
	return &material{cert: cert, leaf: leaf, pool: pool, stamp: st}, nil
}

func stampOf(files Files) (stamp, error) {
	var st stamp
	for i, name := range []string{files.Cert, files.Key, files.CA} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("certs: %w", err)
		}
		st[i] = fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	}
	return st, nil
}

// Reload reads the files again and, if they form a usable set, makes it
// current. On error the previous set stays in use.
func (s *Store) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	m, err := read(s.files)
	if err != nil {
		return err
	}
	s.cur.Store(m)
	return nil
}

// ReloadIfChanged reloads when a file's size or modification time differs
// from the current set's, and reports whether it did. A change that does
// not read as a usable set (say the key is replaced before the
// certificate) returns the error and is tried again next time.
func (s *Store) ReloadIfChanged() (bool, error) {
	st, err := stampOf(s.files)
	if err != nil {
		return false, err
	}
	if st == s.cur.Load().stamp {
		return false, nil
	}
	if err := s.Reload(); err != nil {
		return false, err
	}
	return true, nil
}

// Watch calls ReloadIfChanged every interval until ctx ends, reporting
// each reload and each failure to report (which may be nil).
func (s *Store) Watch(ctx context.Context, interval time.Duration, report func(reloaded bool, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.ReloadIfChanged()
		if (changed || err != nil) && report != nil {
			report(changed, err)
		}
	}
}

// Leaf is the current certificate, for logs and expiry checks.
func (s *Store) Leaf() *x509.Certificate { return s.cur.Load().leaf }

// ServerConfig is the configuration of a listener that presents the
// current certificate. clientAuth says whether clients must present a
// certificate from the CA (tls.RequireAndVerifyClientCert for the peer
// port), may (tls.VerifyClientCertIfGiven) or are not asked
// (tls.NoClientCert). onReject, if not nil, is told about each client
// certificate refused and whose it was: the client only sees a broken
// connection, so the server's log is where an operator learns why.
func (s *Store) ServerConfig(clientAuth tls.ClientAuthType, onReject func(remote string, err error)) *tls.Config {
	// GetConfigForClient runs for each handshake: a reload is seen by the
	// next one, including the CA that verifies client certificates.
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.cur.Load()
			cfg := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{m.cert},
			}
			var remote string
			if hello.Conn != nil {
				remote = hello.Conn.RemoteAddr().String()
			}
			// Verification is done here rather than by crypto/tls
			// (RequireAndVerifyClientCert) only to say who was refused
			// and why; the checks are the same: a chain to the CA,
			// valid now, for client authentication.
			switch clientAuth {
			case tls.RequireAndVerifyClientCert:
				cfg.ClientAuth = tls.RequireAnyClientCert
			case tls.VerifyClientCertIfGiven:
				cfg.ClientAuth = tls.RequestClientCert
			default:
				return cfg, nil
			}
			cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return nil // only reached when a certificate is optional
				}
				err := verifyClient(raw, m.pool)
				if err != nil && onReject != nil {
					onReject(remote, err)
				}
				return err
			}
			return cfg, nil
		},
	}
}

// verifyClient checks a client's chain (leaf first) against pool.
func verifyClient(raw [][]byte, pool *x509.CertPool) error {
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("certs: client certificate does not parse: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("certs: client certificate %q refused: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}

// ClientConfig is a configuration for dialling another node now: it
// trusts the current CA and presents the current certificate. Callers
// that keep connections for long (the peer pool) ask for a new one at
// each dial so that reloads reach new connections.
func (s *Store) ClientConfig() *tls.Config {
	m := s.cur.Load()
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      m.pool,
		Certificates: []tls.Certificate{m.cert},
	}
}
