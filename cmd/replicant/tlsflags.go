package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/replicant-db/replicant/internal/certs"
)

// serverTLSFlags are the server's TLS flags, named as the issue asked and
// close to Redis's tls-cert-file, tls-key-file, tls-ca-cert-file and
// tls-auth-clients.
type serverTLSFlags struct {
	cert, key, ca  string
	authClients    string
	reloadInterval time.Duration
}

func (f *serverTLSFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.cert, "tls-cert", "", "PEM certificate of this node: with --tls-key and --tls-ca, every port (RESP, HTTP, peer) speaks TLS only, and peers must present a certificate from --tls-ca (mutual TLS)")
	fl.StringVar(&f.key, "tls-key", "", "PEM private key of --tls-cert")
	fl.StringVar(&f.ca, "tls-ca", "", "PEM CA certificate(s) that sign every member's certificate (and clients' certificates, see --tls-auth-clients)")
	fl.StringVar(&f.authClients, "tls-auth-clients", "no", "RESP and HTTP clients must present a certificate from --tls-ca: no | optional | yes (peers always must)")
	fl.DurationVar(&f.reloadInterval, "tls-reload-interval", 5*time.Second, "check the TLS files this often and reload them when they change (SIGHUP reloads at once); 0: only on SIGHUP")
}

// serverTLS is the loaded TLS material of a server and the configurations
// built from it.
type serverTLS struct {
	store      *certs.Store
	clientAuth tls.ClientAuthType
	interval   time.Duration
	log        *slog.Logger
}

// load checks the flags and reads the files; nil means TLS is off.
func (f *serverTLSFlags) load(log *slog.Logger) (*serverTLS, error) {
	if f.cert == "" && f.key == "" && f.ca == "" {
		if f.authClients != "no" {
			return nil, errors.New("--tls-auth-clients needs --tls-cert, --tls-key and --tls-ca")
		}
		return nil, nil
	}
	if f.cert == "" || f.key == "" || f.ca == "" {
		return nil, errors.New("TLS needs all of --tls-cert, --tls-key and --tls-ca (the CA also authenticates peers)")
	}
	var auth tls.ClientAuthType
	switch f.authClients {
	case "no":
		auth = tls.NoClientCert
	case "optional":
		auth = tls.VerifyClientCertIfGiven
	case "yes":
		auth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("invalid --tls-auth-clients %q: want no, optional or yes", f.authClients)
	}
	if f.reloadInterval < 0 {
		return nil, errors.New("--tls-reload-interval must not be negative")
	}
	st, err := certs.Load(certs.Files{Cert: f.cert, Key: f.key, CA: f.ca})
	if err != nil {
		return nil, err
	}
	return &serverTLS{store: st, clientAuth: auth, interval: f.reloadInterval, log: log}, nil
}

// clientPorts is the configuration of the RESP and HTTP listeners (nil
// without TLS).
func (s *serverTLS) clientPorts() *tls.Config {
	if s == nil {
		return nil
	}
	return s.store.ServerConfig(s.clientAuth, s.rejected("client"))
}

// rejected logs a refused certificate on a port: the other side sees
// only a closed connection.
func (s *serverTLS) rejected(port string) func(remote string, err error) {
	return func(remote string, err error) {
		s.log.Warn("TLS certificate refused", "port", port, "remote", remote, "err", err)
	}
}

// peerServer is the peer port's: mutual TLS, always.
func (s *serverTLS) peerServer() *tls.Config {
	if s == nil {
		return nil
	}
	return s.store.ServerConfig(tls.RequireAndVerifyClientCert, s.rejected("peer"))
}

// peerClient gives the configuration of each connection to a peer.
func (s *serverTLS) peerClient() func() *tls.Config {
	if s == nil {
		return nil
	}
	return s.store.ClientConfig
}

// registerMetrics exports the current certificate's expiry, the number an
// operator alerts on (a certificate that expires takes every port down).
func (s *serverTLS) registerMetrics(reg prometheus.Registerer) error {
	if s == nil {
		return nil
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "replicant_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate this node serves (--tls-cert, as last reloaded) expires, in Unix seconds.",
	}, func() float64 { return float64(s.store.Leaf().NotAfter.Unix()) })
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register TLS metric: %w", err)
	}
	return nil
}

// expiryWarning is how close to its expiry a loaded certificate is
// logged as a warning.
const expiryWarning = 30 * 24 * time.Hour

// reload keeps the certificates current until ctx ends: on SIGHUP, and
// when the files change (checked every --tls-reload-interval). A failed
// reload is logged and the previous certificate stays in use.
func (s *serverTLS) reload(ctx context.Context) {
	if s == nil {
		return
	}
	log := s.log
	logLoaded := func(how string) {
		leaf := s.store.Leaf()
		log.Info("TLS certificate loaded", "how", how, "subject", leaf.Subject.String(),
			"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		if left := time.Until(leaf.NotAfter); left < expiryWarning {
			log.Warn("TLS certificate expires soon: replace the files, the node reloads them", "in", left.Round(time.Minute).String(),
				"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	logLoaded("start")
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := s.store.Reload(); err != nil {
				log.Error("TLS reload on SIGHUP failed; the previous certificate stays in use", "err", err)
				continue
			}
			logLoaded("SIGHUP")
		case <-tick:
			changed, err := s.store.ReloadIfChanged()
			if err != nil {
				log.Error("TLS files changed but do not load; the previous certificate stays in use", "err", err)
				continue
			}
			if changed {
				logLoaded("files changed")
			}
		}
	}
}

// clientTLSFlags are the TLS flags of the client commands, named as curl
// and etcdctl name them.
type clientTLSFlags struct {
	cacert, cert, key string
}

const envCACert = "REPLICANT_CACERT"

func (c *clientTLSFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&c.cacert, "cacert", os.Getenv(envCACert), "connect with TLS, trusting the CA certificate(s) in this PEM file (the servers' --tls-ca); default $"+envCACert)
	fl.StringVar(&c.cert, "cert", "", "client certificate to present (servers with --tls-auth-clients)")
	fl.StringVar(&c.key, "key", "", "private key of --cert")
}

// config is the TLS configuration the flags ask for; nil means plaintext
// (unless the address itself says https://).
func (c *clientTLSFlags) config() (*tls.Config, error) {
	if (c.cert == "") != (c.key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if c.cacert == "" && c.cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cacert != "" {
		b, err := os.ReadFile(c.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--cacert %s holds no PEM certificate", c.cacert)
		}
		cfg.RootCAs = pool
	}
	if c.cert != "" {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// httpClient is an HTTP client with cfg (the default one for nil).
func httpClient(cfg *tls.Config, base *http.Client) *http.Client {
	if cfg == nil {
		return base
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	c := *base
	c.Transport = t
	return &c
}
