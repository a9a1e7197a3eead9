package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/spdk"
)

// Agent is a node agent: the gRPC service (agentpb.AgentServer) that
// converges the local SPDK to the desired state of its node.
type Agent struct {
	agentpb.UnimplementedAgentServer

	cfg      Config
	log      hclog.Logger
	spdk     *spdk.Client
	ownsSPDK bool
	// health is the Health probe's own connection to the same SPDK, so a
	// long Sync (thousands of requests queued on spdk) never delays it.
	health     *spdk.Client
	ownsHealth bool
	healthMu   sync.Mutex
	healthCall *healthProbe // Health's SPDK probe in flight, shared
	allow      []netip.Prefix
	guard      *guard
	dn         *dnNode
	cn         *cnNode
	bootID     string
	grpc       *grpc.Server
	syncSlot   chan struct{} // one Sync at a time
	stopCtx    context.Context
	stop       context.CancelFunc // when Serve stops: cancels running Syncs
	closeOnce  sync.Once
}

var _ agentpb.AgentServer = (*Agent)(nil)

// New validates cfg, loads the guard state from cfg.StateDir and returns an
// Agent. It does not connect to SPDK: the first RPC does.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g, err := loadGuard(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger.Named("agent").With("role", string(cfg.Role)),
		guard: g, bootID: newBootID(), syncSlot: make(chan struct{}, 1),
	}
	a.stopCtx, a.stop = context.WithCancel(context.Background())
	a.allow, _ = parseAllowList(cfg.AllowedCallers) // validated by withDefaults
	a.spdk = cfg.SPDK
	if a.spdk == nil {
		if a.spdk, err = spdk.New(cfg.SPDKAddr, spdk.WithLogger(a.log)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		a.ownsSPDK = true
	}
	a.health = a.spdk
	if cfg.SPDKAddr != "" {
		if a.health, err = spdk.New(cfg.SPDKAddr, spdk.WithLogger(a.log.Named("health"))); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		a.ownsHealth = true
	}
	if cfg.Role == RoleDN {
		a.dn = newDNNode(a.spdk, cfg.Listener, a.log)
		a.dn.inflight = cfg.MaxInFlight
	} else {
		a.cn = newCNNode(a.spdk, cfg.Listener, a.log)
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(a.authorize, a.errors, a.recovery),
		grpc.WaitForHandlers(true), // Stop returns after the handlers
	}
	if cfg.TLS.Enabled() {
		tc, err := cfg.TLS.ServerTLS()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	if len(a.allow) == 0 && !cfg.TLS.Enabled() {
		a.log.Warn("no TLS and no allowed callers: any caller can change this node")
	}
	a.grpc = grpc.NewServer(opts...)
	agentpb.RegisterAgentServer(a.grpc, a)
	return a, nil
}

func newBootID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (see crypto/rand.Read)
	return hex.EncodeToString(b[:])
}

// Run listens on Config.ListenAddr and serves until ctx ends (see Serve).
func (a *Agent) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", a.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return a.Serve(ctx, lis)
}

// Serve serves gRPC on lis until ctx ends, then stops: running Syncs are
// cancelled, in-flight RPCs get Config.ShutdownTimeout to finish. It
// returns only after every goroutine it started has exited. An Agent serves
// once.
func (a *Agent) Serve(ctx context.Context, lis net.Listener) error {
	a.log.Info("serving", "addr", lis.Addr().String(), "listener", a.cfg.Listener.String())
	errc := make(chan error, 1)
	go func() { errc <- a.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		a.stop()
		if err != nil {
			return fmt.Errorf("agent: serve: %w", err)
		}
		return nil // Close stopped it
	case <-ctx.Done():
	}
	a.stop()
	done := make(chan struct{})
	go func() { a.grpc.GracefulStop(); close(done) }()
	t := time.NewTimer(a.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.grpc.Stop()
		<-done
	}
	<-errc
	a.log.Info("stopped")
	return nil
}

// Close releases the SPDK clients the Agent made (not one given in
// Config.SPDK). It is idempotent.
func (a *Agent) Close() error {
	a.stop()
	var errs []error
	a.closeOnce.Do(func() {
		a.grpc.Stop()
		if a.ownsSPDK {
			errs = append(errs, a.spdk.Close())
		}
		if a.ownsHealth {
			errs = append(errs, a.health.Close())
		}
	})
	return errors.Join(errs...)
}

// InstanceID names this agent process and the SPDK instance it talks to:
// it changes when the agent restarts or its probe connection to SPDK had to
// be re-established (a restarted spdk_tgt has lost its volatile state).
// Every Health and the start of every Sync use that connection, so a
// restart shows at the next of either.
func (a *Agent) InstanceID() string {
	return fmt.Sprintf("%s-%d", a.bootID, a.health.Conns())
}

// Sync implements agentpb.AgentServer.
func (a *Agent) Sync(ctx context.Context, req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
	epochs, err := validateRequest(req, a.cfg.Role)
	if err != nil {
		return nil, err
	}
	if a.cfg.NodeID != "" && req.GetNodeId() != a.cfg.NodeID {
		return nil, fmt.Errorf("%w: node_id %s, this is node %s", ErrWrongNode, req.GetNodeId(), a.cfg.NodeID)
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SyncTimeout)
	defer cancel()
	stop := context.AfterFunc(a.stopCtx, cancel)
	defer stop()
	select {
	case a.syncSlot <- struct{}{}:
		defer func() { <-a.syncSlot }()
	case <-ctx.Done():
		return nil, fmt.Errorf("agent: waiting for the running sync: %w", context.Cause(ctx))
	}
	gen := req.GetGeneration()
	if err := a.guard.check(gen, epochs); err != nil {
		return nil, err
	}
	if _, err := a.health.SpdkGetVersion(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := a.guard.accept(gen, epochs); err != nil {
		return nil, err
	}
	start := time.Now()
	var objs []*agentpb.ObjectStatus
	if a.dn != nil {
		objs = a.dn.sync(ctx, req.GetDn())
	} else {
		objs = a.cn.sync(ctx, req.GetCn())
	}
	a.log.Debug("sync applied", "generation", gen, "objects", len(objs), "duration", time.Since(start))
	return &agentpb.SyncReply{Generation: gen, Objects: objs, InstanceId: a.InstanceID()}, nil
}

// Health implements agentpb.AgentServer: it calls spdk_get_version on its
// own connection, so it answers promptly while a Sync keeps SPDK busy. It
// tells a caller deciding whether the node is dead the two failures apart:
// an SPDK that is gone (its socket refuses or closes the connection), or an
// agent that is stopping, is Unavailable (ErrUnavailable); one that did not
// answer in time is DeadlineExceeded (ErrSPDKSlow), and the agent says so
// before the caller's own deadline, so that a live agent with a slow SPDK is
// not mistaken for silence.
func (a *Agent) Health(ctx context.Context, _ *agentpb.HealthRequest) (*agentpb.HealthReply, error) {
	ctx, cancel := context.WithTimeout(ctx, healthBudget(ctx, a.cfg.HealthTimeout))
	defer cancel()
	stop := context.AfterFunc(a.stopCtx, cancel)
	defer stop()
	start := time.Now()
	version, err := a.probeSPDK(ctx)
	switch {
	case err == nil:
	case a.stopCtx.Err() != nil:
		return nil, fmt.Errorf("%w: agent stopping", ErrUnavailable)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		// Out of time: SPDK (or its socket's backlog) took the request
		// and sat on it. A gone SPDK fails at once instead.
		return nil, fmt.Errorf("%w: no answer in %v: %w", ErrSPDKSlow, time.Since(start).Round(time.Millisecond), err)
	default:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return &agentpb.HealthReply{
		Role: string(a.cfg.Role), InstanceId: a.InstanceID(), Generation: a.guard.lastApplied(), SpdkVersion: version,
	}, nil
}

// healthProbe is Health's spdk_get_version in flight.
type healthProbe struct {
	done    chan struct{}
	version string
	err     error
}

// probeSPDK returns SPDK's version. Concurrent callers share the request in
// flight rather than queue more behind it on the connection (a slow SPDK
// answers them in order, so each would only wait longer, and a caller that
// probes on schedule while an answer is late would pile them up). The
// request is bounded by the context of the call that sent it; a caller
// whose own context ends first gives up alone.
func (a *Agent) probeSPDK(ctx context.Context) (string, error) {
	for {
		a.healthMu.Lock()
		p := a.healthCall
		mine := p == nil
		if mine {
			p = &healthProbe{done: make(chan struct{})}
			a.healthCall = p
		}
		a.healthMu.Unlock()
		if mine {
			v, err := a.health.SpdkGetVersion(ctx)
			p.version, p.err = v.Version, err
			a.healthMu.Lock()
			a.healthCall = nil
			a.healthMu.Unlock()
			close(p.done)
			return p.version, p.err
		}
		select {
		case <-p.done:
			if errors.Is(p.err, context.Canceled) && ctx.Err() == nil {
				continue // its caller left, not SPDK: ask again
			}
			return p.version, p.err
		case <-ctx.Done():
			return "", fmt.Errorf("spdk: spdk_get_version: %w", ctx.Err())
		}
	}
}

// healthBudget is how long Health may wait for SPDK: at most limit, and at
// most nine tenths of what is left of the caller's deadline, leaving the
// rest for the answer to get back before the caller gives up.
func healthBudget(ctx context.Context, limit time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		return max(0, min(limit, left-left/10))
	}
	return limit
}

// authorize refuses callers outside Config.AllowedCallers.
func (a *Agent) authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if len(a.allow) > 0 {
		if err := a.allowed(ctx); err != nil {
			a.log.Warn("refused caller", "method", info.FullMethod, "error", err)
			return nil, Status(err).Err()
		}
	}
	return h(ctx, req)
}

func (a *Agent) allowed(ctx context.Context) error {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return fmt.Errorf("%w: unknown peer", ErrPermissionDenied)
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return fmt.Errorf("%w: peer %s is not an IP address", ErrPermissionDenied, p.Addr)
	}
	ip := ap.Addr().Unmap()
	for _, pr := range a.allow {
		if pr.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrPermissionDenied, ip)
}

// errors maps handler errors to gRPC statuses (Status) and logs them.
func (a *Agent) errors(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	if err != nil {
		st := Status(err)
		a.log.Debug("rpc failed", "method", info.FullMethod, "code", st.Code().String(), "error", st.Message(), "duration", time.Since(start))
		return nil, st.Err()
	}
	a.log.Trace("rpc", "method", info.FullMethod, "duration", time.Since(start))
	return resp, nil
}

// recovery turns a panic in a handler into ErrInternal.
func (a *Agent) recovery(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: panic in %s", ErrInternal, info.FullMethod)
		}
	}()
	return h(ctx, req)
}
