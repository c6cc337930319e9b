package transport

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Handler serves inbound peer requests.
type Handler interface {
	HandleRaft(ctx context.Context, msgs []*raftpb.Message) error
	HandleReplicate(stream pb.Peer_ReplicateServer) error
	HandleSnapshot(req *pb.SnapshotRequest, stream pb.Peer_SnapshotServer) error
	HandleJoin(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error)
	HandlePosition(ctx context.Context, req *pb.PositionRequest) (*pb.PositionResponse, error)
	HandleChanges(req *pb.ChangesRequest, stream pb.Peer_ChangesServer) error
	HandleSiteInfo(ctx context.Context, req *pb.SiteInfoRequest) (*pb.SiteInfoResponse, error)
	HandleReplica(ctx context.Context, req *pb.ReplicaRequest) (*pb.ReplicaResponse, error)
	HandleAntiEntropy(ctx context.Context, req *pb.AntiEntropyRequest) (*pb.AntiEntropyResponse, error)
}

// MaxMessageBytes returns the gRPC message limit for a value limit: one
// entry with the largest key and value must fit, with room to spare.
func MaxMessageBytes(maxValue, maxKey int) int {
	return max(64<<20, 2*maxValue+maxKey+(1<<20))
}

// Server is the gRPC peer server.
type Server struct {
	pb.UnimplementedPeerServer
	h   Handler
	srv *grpc.Server
}

// Option configures a Server or a Pool.
type Option func(*options)

type options struct {
	serverTLS *tls.Config
	clientTLS func() *tls.Config
}

// WithServerTLS makes a Server accept only TLS connections with cfg. For
// mutual TLS (a peer without a certificate from the cluster's CA cannot
// connect, so cannot join, stream or vote) cfg requires and verifies
// client certificates; see certs.Store.ServerConfig.
func WithServerTLS(cfg *tls.Config) Option { return func(o *options) { o.serverTLS = cfg } }

// WithClientTLS makes a Pool dial over TLS with the configuration cfg
// returns, asked for again at each new connection so that a reloaded
// certificate or CA is used from the next (re)connect on.
func WithClientTLS(cfg func() *tls.Config) Option { return func(o *options) { o.clientTLS = cfg } }

func applyOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// NewServer creates a peer server; maxMsg bounds message sizes. A non-empty
// secret (the cluster's --peer-secret) must be presented by every peer on
// every call, unary and streaming alike (see Pool): the peer port carries
// control-plane raft messages, log streams whose acks decide commit,
// snapshots of all data and membership changes, so no RPC is exempt. An
// empty secret admits everyone. With WithServerTLS, both checks apply:
// the TLS handshake first, then the secret.
func NewServer(h Handler, maxMsg int, secret string, opts ...Option) *Server {
	s := &Server{h: h}
	o := applyOptions(opts)
	creds := insecure.NewCredentials()
	if o.serverTLS != nil {
		creds = credentials.NewTLS(o.serverTLS)
	}
	// Interceptors run before the method handler for every registered RPC,
	// so a method added later is covered without remembering to check.
	s.srv = grpc.NewServer(
		grpc.Creds(creds),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
			if err := checkSecret(ctx, secret); err != nil {
				return nil, err
			}
			return next(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
			if err := checkSecret(ss.Context(), secret); err != nil {
				return err
			}
			return next(srv, ss)
		}),
		grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg),
		grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 5 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	)
	pb.RegisterPeerServer(s.srv, s)
	return s
}

// Serve serves on ln until Stop.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("transport: %w", err)
	}
	return nil
}

// Stop closes every connection and stream at once.
func (s *Server) Stop() { s.srv.Stop() }

// Raft implements pb.PeerServer.
func (s *Server) Raft(ctx context.Context, b *pb.RaftBatch) (*pb.Empty, error) {
	msgs := make([]*raftpb.Message, 0, len(b.Messages))
	for _, raw := range b.Messages {
		m := &raftpb.Message{}
		if err := proto.Unmarshal(raw, m); err != nil {
			return nil, fmt.Errorf("transport: bad raft message: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := s.h.HandleRaft(ctx, msgs); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// Replicate implements pb.PeerServer.
func (s *Server) Replicate(stream pb.Peer_ReplicateServer) error { return s.h.HandleReplicate(stream) }

// Snapshot implements pb.PeerServer.
func (s *Server) Snapshot(req *pb.SnapshotRequest, stream pb.Peer_SnapshotServer) error {
	return s.h.HandleSnapshot(req, stream)
}

// Join implements pb.PeerServer.
func (s *Server) Join(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	return s.h.HandleJoin(ctx, req)
}

// Position implements pb.PeerServer.
func (s *Server) Position(ctx context.Context, req *pb.PositionRequest) (*pb.PositionResponse, error) {
	return s.h.HandlePosition(ctx, req)
}

// Changes implements pb.PeerServer.
func (s *Server) Changes(req *pb.ChangesRequest, stream pb.Peer_ChangesServer) error {
	return s.h.HandleChanges(req, stream)
}

// SiteInfo implements pb.PeerServer.
func (s *Server) SiteInfo(ctx context.Context, req *pb.SiteInfoRequest) (*pb.SiteInfoResponse, error) {
	return s.h.HandleSiteInfo(ctx, req)
}

// Replica implements pb.PeerServer.
func (s *Server) Replica(ctx context.Context, req *pb.ReplicaRequest) (*pb.ReplicaResponse, error) {
	return s.h.HandleReplica(ctx, req)
}

// AntiEntropy implements pb.PeerServer.
func (s *Server) AntiEntropy(ctx context.Context, req *pb.AntiEntropyRequest) (*pb.AntiEntropyResponse, error) {
	return s.h.HandleAntiEntropy(ctx, req)
}

// Pool holds one client connection per peer address.
type Pool struct {
	maxMsg int
	secret string
	creds  credentials.TransportCredentials
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// NewPool creates an empty pool; a non-empty secret is sent with every call.
func NewPool(maxMsg int, secret string, opts ...Option) *Pool {
	o := applyOptions(opts)
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if o.clientTLS != nil {
		creds = &reloadingTLS{TransportCredentials: credentials.NewTLS(o.clientTLS()), cfg: o.clientTLS}
	}
	return &Pool{maxMsg: maxMsg, secret: secret, creds: creds, conns: map[string]*grpc.ClientConn{}}
}

// reloadingTLS is gRPC's TLS client credentials with the configuration
// taken afresh for each handshake: credentials.NewTLS copies its config
// once, and a pool's connections live as long as the process, so a
// rotated certificate would otherwise never be presented.
type reloadingTLS struct {
	credentials.TransportCredentials
	cfg func() *tls.Config
}

func (r *reloadingTLS) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(r.cfg()).ClientHandshake(ctx, authority, conn)
}

func (r *reloadingTLS) Clone() credentials.TransportCredentials {
	return &reloadingTLS{TransportCredentials: r.TransportCredentials.Clone(), cfg: r.cfg}
}

const secretHeader = "replicant-cluster-secret"

// UnauthenticatedMsg is the message a peer without the cluster's
// secret is refused with (as gRPC status Unauthenticated).
const UnauthenticatedMsg = "peer did not present this cluster's secret (--peer-secret, or --requirepass when no node sets --peer-secret, must match on every node)"

// checkSecret admits a peer call when no secret is configured or the call
// carries it.
func checkSecret(ctx context.Context, secret string) error {
	if secret == "" {
		return nil
	}
	// Compare digests: subtle.ConstantTimeCompare returns early when the
	// lengths differ, which would tell a prober the secret's length.
	want := sha256.Sum256([]byte(secret))
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(secretHeader) {
		got := sha256.Sum256([]byte(v))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, UnauthenticatedMsg)
}

// secretCreds attaches the cluster secret to every call.
type secretCreds string

func (s secretCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{secretHeader: string(s)}, nil
}

func (secretCreds) RequireTransportSecurity() bool { return false }

// Client returns a client for addr, creating the connection lazily (gRPC
// dials in the background and reconnects with exponential backoff).
// Flow-control windows of the peer connections. gRPC starts a stream at
// 64 KiB and grows it from its bandwidth estimate, which on a fast link
// between busy processes stays small: a snapshot stream of 1 MiB chunks
// then waits for a window update every 64 KiB. Fixed windows this size
// let a chunk or a batch of log entries go out in one piece; they bound
// what a peer may buffer per stream and per connection, not what is sent.
const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
)

func (p *Pool) Client(addr string) (pb.PeerClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("transport: pool closed")
	}
	if c, ok := p.conns[addr]; ok {
		return pb.NewPeerClient(c), nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(p.creds)}
	if p.secret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(secretCreds(p.secret)))
	}
	c, err := grpc.NewClient(addr, append(opts,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(p.maxMsg), grpc.MaxCallSendMsgSize(p.maxMsg)),
		grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	p.conns[addr] = c
	return pb.NewPeerClient(c), nil
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[string]*grpc.ClientConn{}
}

// RaftSender delivers raft messages to peers without blocking its caller:
// one queue and goroutine per destination.
type RaftSender struct {
	pool    *Pool
	resolve func(raftID uint64) (string, bool)
	log     *slog.Logger

	mu     sync.Mutex
	queues map[uint64]chan *raftpb.Message
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRaftSender creates a sender; resolve maps a raft id to a peer address.
func NewRaftSender(pool *Pool, resolve func(uint64) (string, bool), log *slog.Logger) *RaftSender {
	ctx, cancel := context.WithCancel(context.Background())
	return &RaftSender{pool: pool, resolve: resolve, log: log, queues: map[uint64]chan *raftpb.Message{}, ctx: ctx, cancel: cancel}
}

// Send queues msgs; messages to unknown or congested peers are dropped.
func (r *RaftSender) Send(msgs []*raftpb.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		q, ok := r.queues[to]
		if !ok {
			q = make(chan *raftpb.Message, 1024)
			r.queues[to] = q
			r.wg.Add(1)
			go r.run(to, q)
		}
		select {
		case q <- m:
		default: // congested: raft will retry
		}
	}
}

func (r *RaftSender) run(to uint64, q chan *raftpb.Message) {
	defer r.wg.Done()
	for {
		var first *raftpb.Message
		select {
		case <-r.ctx.Done():
			return
		case first = <-q:
		}
		batch := &pb.RaftBatch{}
		add := func(m *raftpb.Message) {
			if b, err := proto.Marshal(m); err == nil {
				batch.Messages = append(batch.Messages, b)
			}
		}
		add(first)
	fill:
		for len(batch.Messages) < 256 {
			select {
			case m := <-q:
				add(m)
			default:
				break fill
			}
		}
		addr, ok := r.resolve(to)
		if !ok {
			continue
		}
		c, err := r.pool.Client(addr)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		_, err = c.Raft(ctx, batch)
		cancel()
		if err != nil && r.ctx.Err() == nil {
			r.log.Debug("raft send failed", "to", addr, "err", err)
		}
	}
}

// Close stops the sender goroutines.
func (r *RaftSender) Close() {
	r.mu.Lock()
	r.cancel()
	r.mu.Unlock()
	r.wg.Wait()
}
