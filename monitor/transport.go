package monitor

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
)

// Transport reaches the agents of the nodes a monitor drives. The default
// (Config.Transport nil) is GRPC with the monitor's TLS; InProcess calls
// agents in the monitor's own process.
//
// Calls on a connection fail as gRPC calls do, and the monitor judges node
// health by the codes: Unavailable when the agent cannot be reached or its
// SPDK is gone (strong evidence of a dead node), DeadlineExceeded when it
// does not answer in time (weak evidence), FailedPrecondition for state the
// agent refuses as stale or not its own.
type Transport interface {
	// Dial returns a connection to the agent of node t. It does not wait
	// for the agent: a node that is down fails calls, not Dial.
	Dial(ctx context.Context, t Target) (AgentConn, error)
}

// AgentConn is a connection to one agent: the agent's calls and Close.
type AgentConn interface {
	agentpb.AgentClient
	Close() error
}

// Target is a node whose agent a Transport dials.
type Target struct {
	NodeID string
	// Name is the node's name: the identity its agent must prove (over
	// mutual TLS, its certificate names vda://agent/<Name>).
	Name string
	// Address is where the agent listens: the node's Address, or its Name
	// when it has none.
	Address string
	Role    Role
}

// GRPC is the Transport over gRPC: TLS, when set, is the client side of
// mutual TLS, and the agent must present a certificate naming
// vda://agent/<Target.Name>, so an address that reaches another node's
// agent fails the handshake (Unavailable); nil means plaintext.
// DialOptions are added after the transport credentials, so they may
// override them.
type GRPC struct {
	TLS         *tls.Config
	DialOptions []grpc.DialOption
}

var _ Transport = GRPC{}

// Dial implements Transport.
func (g GRPC) Dial(_ context.Context, t Target) (AgentConn, error) {
	creds := insecure.NewCredentials()
	if g.TLS != nil {
		creds = credentials.NewTLS(mtls.ExpectPeer(g.TLS, mtls.Identity{Role: mtls.RoleAgent, Name: t.Name}))
	}
	conn, err := grpc.NewClient(t.Address, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, g.DialOptions...)...)
	if err != nil {
		return nil, err
	}
	return grpcConn{AgentClient: agentpb.NewAgentClient(conn), conn: conn}, nil
}

type grpcConn struct {
	agentpb.AgentClient
	conn *grpc.ClientConn
}

var _ BreakWatcher = grpcConn{}

func (c grpcConn) Close() error { return c.conn.Close() }

// Broken implements BreakWatcher: the channel is closed when the
// connection, once ready, stops being ready (the agent closed or reset
// it, or it was closed here).
func (c grpcConn) Broken(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		s := c.conn.GetState()
		for s != connectivity.Ready {
			if s == connectivity.Shutdown || !c.conn.WaitForStateChange(ctx, s) {
				return
			}
			s = c.conn.GetState()
		}
		if c.conn.WaitForStateChange(ctx, connectivity.Ready) {
			close(ch)
		}
	}()
	return ch
}

// BreakWatcher is an AgentConn that learns when its connection to the
// agent breaks (the agent's process died, its host rebooted): the monitor
// then probes the node at once rather than at its next probe, so the
// failure detector's probes (Failover.Interval apart) start from the
// break. GRPC's connections are; InProcess has no connection to break.
type BreakWatcher interface {
	// Broken returns a channel closed the next time the connection
	// breaks; work it starts ends with ctx.
	Broken(ctx context.Context) <-chan struct{}
}

// InProcess is a Transport to agents in the monitor's process: it calls
// the agent registered at a node's address directly (agent.(*Agent).Local)
// as Caller, a monitor identity, so the agent checks the caller's role and
// answers with the errors of a gRPC call, without a network or
// certificates. The agent is looked up at every call: a node restarted
// with a new Agent is reached once that is registered under its address,
// and an address with no agent, or one that stopped, is Unavailable, as a
// refused connection is. An agent whose certificate names another node
// than the one dialed (Agent.NodeName) is Unavailable too, as the
// handshake of GRPC would fail.
type InProcess struct {
	caller mtls.Identity

	mu     sync.RWMutex
	agents map[string]*agent.Agent // by address
}

var _ Transport = (*InProcess)(nil)

// NewInProcess returns an InProcess transport calling agents as
// vda://monitor/<monitorName>.
func NewInProcess(monitorName string) (*InProcess, error) {
	id := mtls.Identity{Role: mtls.RoleMonitor, Name: monitorName}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &InProcess{caller: id, agents: map[string]*agent.Agent{}}, nil
}

// Add registers a as the agent at address (a node's Address, or its name
// when it has none), replacing any agent there.
func (p *InProcess) Add(address string, a *agent.Agent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.agents[address] = a
}

// Remove unregisters the agent at address: calls to it fail as refused.
func (p *InProcess) Remove(address string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.agents, address)
}

// Dial implements Transport.
func (p *InProcess) Dial(_ context.Context, t Target) (AgentConn, error) {
	return &localConn{p: p, t: t}, nil
}

// localConn is a connection of InProcess to one node.
type localConn struct {
	p *InProcess
	t Target
}

// client returns the client of the agent at the node's address now.
func (c *localConn) client() (agentpb.AgentClient, error) {
	c.p.mu.RLock()
	a := c.p.agents[c.t.Address]
	c.p.mu.RUnlock()
	if a == nil {
		return nil, status.Errorf(codes.Unavailable, "monitor: no agent at %s in this process", c.t.Address)
	}
	if name := a.NodeName(); name != "" && name != c.t.Name {
		return nil, status.Errorf(codes.Unavailable, "monitor: %v: the agent at %s is node %s's, want node %s",
			mtls.ErrWrongPeer, c.t.Address, name, c.t.Name)
	}
	return a.Local(c.p.caller), nil
}

func (c *localConn) Sync(ctx context.Context, req *agentpb.SyncRequest, opts ...grpc.CallOption) (*agentpb.SyncReply, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	return cl.Sync(ctx, req, opts...)
}

func (c *localConn) Health(ctx context.Context, req *agentpb.HealthRequest, opts ...grpc.CallOption) (*agentpb.HealthReply, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	return cl.Health(ctx, req, opts...)
}

func (c *localConn) Reanchor(ctx context.Context, req *agentpb.ReanchorRequest, opts ...grpc.CallOption) (*agentpb.ReanchorReply, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	return cl.Reanchor(ctx, req, opts...)
}

func (c *localConn) Close() error { return nil }

// watchedConn is a worker's connection: it looks at every Health reply
// (sawHealth) before returning it.
type watchedConn struct {
	AgentConn
	w *worker
}

// Broken passes on the connection's BreakWatcher, if it is one (nil:
// never).
func (c watchedConn) Broken(ctx context.Context) <-chan struct{} {
	if b, ok := c.AgentConn.(BreakWatcher); ok {
		return b.Broken(ctx)
	}
	return nil
}

func (c watchedConn) Health(ctx context.Context, req *agentpb.HealthRequest, opts ...grpc.CallOption) (*agentpb.HealthReply, error) {
	h, err := c.AgentConn.Health(ctx, req, opts...)
	if err == nil {
		c.w.sawHealth(h)
	}
	return h, err
}
