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
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
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
	agentID    string // persistent (StateDir) or per process
	name       string // the node its certificate names; "" without TLS
	dn         *dnNode
	cn         *cnNode
	bootID     string
	grpc       *grpc.Server
	syncSlot   chan struct{} // one Sync at a time
	spdkCalls  atomic.Int64  // calls on spdk, for Metrics
	stopCtx    context.Context
	stop       context.CancelFunc // when Serve stops: cancels running Syncs
	closeOnce  sync.Once
	localMu    sync.RWMutex // held for reading by calls of Local clients
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
	agentID, persisted, err := loadAgentID(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger.Named("agent").With("role", string(cfg.Role)),
		guard: g, agentID: agentID, bootID: newBootID(), syncSlot: make(chan struct{}, 1),
	}
	if !persisted {
		a.log.Warn("no state dir: this agent's ID is new in every process, so a restart needs its node unbound "+
			"(vda dn/cn unbind) before the monitor drives it again; set a state dir", "agent_id", agentID)
	}
	a.stopCtx, a.stop = context.WithCancel(context.Background())
	a.allow, _ = parseAllowList(cfg.AllowedCallers) // validated by withDefaults
	a.spdk = cfg.SPDK
	if a.spdk == nil {
		if a.spdk, err = spdk.New(cfg.SPDKAddr, spdk.WithLogger(a.log), spdk.WithObserver(a.observeSPDK)); err != nil {
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
		a.dn.aio = newAioPolicy(cfg)
	} else {
		a.cn = newCNNode(a.spdk, cfg.Listener, a.log)
	}
	opts, err := a.serverOptions()
	if err != nil {
		a.closeClients()
		return nil, err
	}
	a.grpc = grpc.NewServer(opts...)
	agentpb.RegisterAgentServer(a.grpc, a)
	return a, nil
}

// serverOptions returns the gRPC server's options: with TLS, the
// credentials and the role policy (Policy) after the allow-list; without,
// a loud warning (Config.Insecure).
func (a *Agent) serverOptions() ([]grpc.ServerOption, error) {
	unary := []grpc.UnaryServerInterceptor{a.authorize}
	stream := []grpc.StreamServerInterceptor{a.authorizeStream}
	opts := []grpc.ServerOption{grpc.WaitForHandlers(true)} // Stop returns after the handlers
	if a.cfg.TLS.Enabled() {
		id, err := a.cfg.TLS.Identity()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if id.Role != mtls.RoleAgent {
			return nil, fmt.Errorf("%w: the certificate names %s, not an agent (vda://agent/<node name>)", ErrConfig, id)
		}
		tc, err := a.cfg.TLS.ServerTLS()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		a.name = id.Name
		a.log = a.log.With("node", id.Name)
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
		unary = append(unary, a.roles)
		stream = append(stream, mtls.StreamServerInterceptor(Policy())) // no streams yet: closed
	} else {
		a.log.Warn("INSECURE: no TLS: any caller that reaches this agent can change or wipe this node's SPDK",
			"allowed_callers", a.cfg.AllowedCallers)
	}
	unary = append(unary, a.errors, a.recovery)
	return append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...)), nil
}

// Policy is who may call an agent over mutual TLS: Sync and Reanchor only
// a monitor, Health a monitor or an operator (admin).
func Policy() mtls.Policy {
	return mtls.Policy{
		agentpb.Agent_Sync_FullMethodName:     {mtls.RoleMonitor},
		agentpb.Agent_Reanchor_FullMethodName: {mtls.RoleMonitor},
		agentpb.Agent_Health_FullMethodName:   {mtls.RoleMonitor, mtls.RoleAdmin},
	}
}

// closeClients closes the SPDK clients New made.
func (a *Agent) closeClients() {
	if a.ownsSPDK {
		_ = a.spdk.Close()
	}
	if a.ownsHealth {
		_ = a.health.Close()
	}
}

// AgentID returns the agent's ID (HealthReply.agent_id).
func (a *Agent) AgentID() string { return a.agentID }

// NodeName returns the node the agent's certificate names ("" without TLS).
func (a *Agent) NodeName() string { return a.name }

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

// Close stops the agent (calls of Local clients fail from then on, and
// Close waits for those in flight) and releases the SPDK clients the Agent
// made (not one given in Config.SPDK). It is idempotent.
func (a *Agent) Close() error {
	a.stop()
	var errs []error
	a.closeOnce.Do(func() {
		a.grpc.Stop()
		a.localMu.Lock() // wait for the calls of Local clients (cancelled by stop)
		a.localMu.Unlock()
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
	if err := validateBounds(req, epochs); err != nil {
		return nil, err
	}
	if err := a.checkNode(req.GetAgentId(), req.GetNodeId(), req.GetNodeName()); err != nil {
		return nil, err
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
		if a.cfg.Metrics != nil {
			a.cfg.Metrics.Synced(0, 0, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := a.guard.accept(gen, epochs); err != nil {
		return nil, err
	}
	start, rpcs := time.Now(), a.spdkCalls.Load()
	var objs []*agentpb.ObjectStatus
	if a.dn != nil {
		objs = a.dn.sync(ctx, req.GetDn())
	} else {
		objs = a.cn.sync(ctx, req.GetCn())
	}
	a.log.Debug("sync applied", "generation", gen, "objects", len(objs), "duration", time.Since(start))
	if a.cfg.Metrics != nil {
		a.cfg.Metrics.Synced(time.Since(start), int(a.spdkCalls.Load()-rpcs), nil)
	}
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
	gen, maxEpoch := a.guard.held()
	return &agentpb.HealthReply{
		Role: string(a.cfg.Role), InstanceId: a.InstanceID(), Generation: a.guard.lastApplied(), SpdkVersion: version,
		AgentId: a.agentID, GuardGeneration: gen, GuardMaxEpoch: maxEpoch, NodeName: a.name,
	}, nil
}

// checkNode refuses a request meant for another agent or node: another
// agent ID, another node ID than Config.NodeID, or (with TLS) another node
// name than the certificate's.
func (a *Agent) checkNode(agentID, nodeID, nodeName string) error {
	if agentID != a.agentID {
		return fmt.Errorf("%w: agent_id %s, this is agent %s", ErrWrongNode, agentID, a.agentID)
	}
	if a.cfg.NodeID != "" && nodeID != a.cfg.NodeID {
		return fmt.Errorf("%w: node_id %s, this is node %s", ErrWrongNode, nodeID, a.cfg.NodeID)
	}
	if a.name != "" && nodeName != a.name {
		return fmt.Errorf("%w: node_name %q, this agent's certificate names node %q", ErrWrongNode, nodeName, a.name)
	}
	return nil
}

// Reanchor implements agentpb.AgentServer: it resets a guard that holds a
// generation or an epoch above the store's revision to the store's values
// (see agentpb.ReanchorRequest).
func (a *Agent) Reanchor(ctx context.Context, req *agentpb.ReanchorRequest) (*agentpb.ReanchorReply, error) {
	if err := validateReanchor(req); err != nil {
		return nil, err
	}
	if err := a.checkNode(req.GetAgentId(), req.GetNodeId(), req.GetNodeName()); err != nil {
		return nil, err
	}
	select {
	case a.syncSlot <- struct{}{}: // not while a Sync checks the guard
		defer func() { <-a.syncSlot }()
	case <-ctx.Done():
		return nil, fmt.Errorf("agent: waiting for the running sync: %w", context.Cause(ctx))
	}
	prevGen, prevMax, err := a.guard.reanchor(req.GetExpectGeneration(), req.GetExpectMaxEpoch(), req.GetStoreRevision(),
		req.GetGeneration(), req.GetEpochs())
	if err != nil {
		return nil, err
	}
	caller, _ := mtls.CallerIdentity(ctx)
	a.log.Warn("guard re-anchored to the store: it held a generation or an epoch no monitor issued",
		"previous_generation", prevGen, "previous_max_epoch", prevMax, "generation", req.GetGeneration(),
		"store_revision", req.GetStoreRevision(), "epochs", len(req.GetEpochs()), "caller", caller.String())
	return &agentpb.ReanchorReply{PreviousGeneration: prevGen, PreviousMaxEpoch: prevMax}, nil
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

// authorizeStream is authorize for streams.
func (a *Agent) authorizeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if len(a.allow) > 0 {
		if err := a.allowed(ss.Context()); err != nil {
			a.log.Warn("refused caller", "method", info.FullMethod, "error", err)
			return Status(err).Err()
		}
	}
	return h(srv, ss)
}

// roles enforces Policy on callers over mutual TLS and logs refusals.
func (a *Agent) roles(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	called := false
	resp, err := rolePolicy(ctx, req, info, func(ctx context.Context, req any) (any, error) {
		called = true
		return h(ctx, req)
	})
	if !called {
		a.log.Warn("refused caller", "method", info.FullMethod, "error", err)
	}
	return resp, err
}

var rolePolicy = mtls.UnaryServerInterceptor(Policy())

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
