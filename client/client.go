// Package client is replicant's Go client over the HTTP API. It keeps a
// session token so that, with Consistency "session", a client reads its own
// writes and never sees time go backwards, whichever node it talks to.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// ErrNotFound is returned by Get and Delete for a missing key.
var ErrNotFound = errors.New("replicant: key not found")

// StatusError is a non-success HTTP answer.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("replicant: %d: %s", e.Code, e.Message) }

// Options configure a Client.
type Options struct {
	// Consistency is sent as Replicant-Consistency (empty: node default).
	Consistency string
	// Password is sent as a bearer token.
	Password string
	// HTTPClient overrides the transport.
	HTTPClient *http.Client
	// TLS, when set, makes the client talk HTTPS to an address given as
	// host:port, verifying the node's certificate with TLS.RootCAs (the
	// cluster's CA; nil: the system's roots) and presenting
	// TLS.Certificates to nodes that ask for one (--tls-auth-clients).
	// An HTTPClient, when also set, is used as it is: its own transport
	// decides TLS, and TLS only selects https.
	TLS *tls.Config
}

// Client talks to one node (writes follow redirects to the leader).
type Client struct {
	base string
	opts Options
	hc   *http.Client

	mu    sync.Mutex
	token string
}

// New returns a client for the node at addr ("host:port" or a URL).
func New(addr string, o Options) *Client {
	if !strings.Contains(addr, "://") {
		scheme := "http://"
		if o.TLS != nil {
			scheme = "https://"
		}
		addr = scheme + addr
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
		if o.TLS != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = o.TLS.Clone()
			hc.Transport = t
		}
	}
	return &Client{base: strings.TrimRight(addr, "/"), opts: o, hc: hc}
}

// Token is the newest token this client has seen (EPOCH:LSN), or "".
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// SetToken raises the session floor to tok (e.g. handed over from another
// client).
func (c *Client) SetToken(tok string) { c.observe(tok) }

func (c *Client) observe(tok string) {
	if tok == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = laterToken(c.token, tok)
}

// laterToken is the session floor after seeing tok: in single-leader mode
// the later of two EPOCH:LSN tokens (the later epoch, then the higher LSN:
// a lower-epoch token with a higher LSN names a suffix that the later
// epoch discarded), in multi-leader mode the merge of two vectors
// (eu:120,us:98), which covers both. See engine.Token.Later.
func laterToken(cur, tok string) string { return engine.LaterToken(cur, tok) }

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("replicant: %w", err)
	}
	if c.opts.Consistency != "" {
		req.Header.Set("Replicant-Consistency", c.opts.Consistency)
	}
	if t := c.Token(); t != "" && c.opts.Consistency == "session" {
		req.Header.Set("Replicant-Token", t)
	}
	if c.opts.Password != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("replicant: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("replicant: read response: %w", err)
	}
	c.observe(resp.Header.Get("Replicant-Token"))
	return resp, data, nil
}

func errorOf(resp *http.Response, data []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if resp.StatusCode == http.StatusNotFound {
		return &notFoundError{msg: msg}
	}
	return &StatusError{Code: resp.StatusCode, Message: msg}
}

// notFoundError is a 404 that matches ErrNotFound. It reads as the
// server's message, which already names the key, instead of wrapping
// ErrNotFound ("key not found: key "k" not found").
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string {
	if e.msg == "" {
		return ErrNotFound.Error()
	}
	return "replicant: " + e.msg
}

func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

func keyPath(key string) string { return "/v1/kv/" + url.PathEscape(key) }

// Get returns key's value.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	resp, data, err := c.do(ctx, http.MethodGet, keyPath(key), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorOf(resp, data)
	}
	return data, nil
}

// Put stores value under key; ttl 0 means no expiry.
func (c *Client) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	p := keyPath(key)
	if ttl > 0 {
		p += "?ttl=" + url.QueryEscape(ttl.String())
	}
	if value == nil {
		value = []byte{}
	}
	resp, data, err := c.do(ctx, http.MethodPut, p, value)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return errorOf(resp, data)
	}
	return nil
}

// Delete removes key; ErrNotFound if it did not exist.
func (c *Client) Delete(ctx context.Context, key string) error {
	resp, data, err := c.do(ctx, http.MethodDelete, keyPath(key), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return errorOf(resp, data)
	}
	return nil
}

// Status returns the node's /v1/status document.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, data, err := c.do(ctx, http.MethodGet, "/v1/status", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorOf(resp, data)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("replicant: decode status: %w", err)
	}
	return &st, nil
}

// Config is the cluster's run-time replication policy.
type Config struct {
	Sync     string `json:"sync,omitempty"`
	Ack      string `json:"ack,omitempty"`
	Fallback string `json:"sync_fallback,omitempty"`
}

// SetConfig changes the commit policy, ack level or fallback (empty fields
// are kept) and returns the resulting configuration.
func (c *Client) SetConfig(ctx context.Context, cfg Config) (*Config, error) {
	body, _ := json.Marshal(cfg)
	resp, data, err := c.do(ctx, http.MethodPut, "/v1/config", body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorOf(resp, data)
	}
	var out Config
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("replicant: decode config: %w", err)
	}
	return &out, nil
}

// RemoveMember takes a node out of the cluster.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	resp, data, err := c.do(ctx, http.MethodDelete, "/v1/members/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return errorOf(resp, data)
	}
	return nil
}

// Failover hands leadership to member to (a planned switchover that loses
// nothing). The request is redirected to the leader if needed.
func (c *Client) Failover(ctx context.Context, to string) error {
	body, _ := json.Marshal(map[string]string{"to": to})
	resp, data, err := c.do(ctx, http.MethodPost, "/v1/failover", body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errorOf(resp, data)
	}
	return nil
}
