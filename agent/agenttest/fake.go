package agenttest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// FakePDBytes is the capacity a Fake reports for every PD.
const FakePDBytes = 64 << 30

// seq orders the Syncs of every Fake of a process.
var seq atomic.Int64

// LastSeq returns the Seq of the newest Sync any Fake of the process
// received: a mark to tell later Syncs by.
func LastSeq() int64 { return seq.Load() }

// SyncRecord is one Sync a Fake received.
type SyncRecord struct {
	Req *agentpb.SyncRequest
	// Monitor is the caller's "monitor-id" metadata, if it sent one.
	Monitor string
	// Seq orders the Syncs of every Fake of the process.
	Seq int64
}

// Fake is a scripted agentpb.AgentServer served over gRPC on a loopback
// port held for the test (Addr). It enforces the generation, epoch and
// agent-ID rules of the real agent, records every Sync and replies with
// every object OK (OKReply) unless scripted otherwise. Its methods are safe
// for concurrent use.
type Fake struct {
	agentpb.UnimplementedAgentServer
	// Addr is the Fake's gRPC address (the name of its node).
	Addr string
	// Role is the Fake's role.
	Role agent.Role

	t    testing.TB
	port *reserve.Port

	mu         sync.Mutex
	srv        *grpc.Server
	syncs      []SyncRecord
	applied    int64
	epochs     map[string]int64
	instance   string
	agentID    string // what Health reports; a Sync must name it
	opts       []grpc.ServerOption
	down       bool // Health answers Unavailable
	slowHealth bool
	healths    int
	hang       chan struct{}
	// script, if set, may replace the reply (or fail) for a request.
	script func(req *agentpb.SyncRequest) (*agentpb.SyncReply, error)
}

// NewFake serves a Fake of role on a loopback port until t ends.
func NewFake(t testing.TB, role agent.Role) *Fake {
	return NewFakeWith(t, role, nil)
}

// NewFakeWith is NewFake whose server gets the options opts returns for
// its address (e.g. TLS credentials naming it).
func NewFakeWith(t testing.TB, role agent.Role, opts func(addr string) []grpc.ServerOption) *Fake {
	a := &Fake{t: t, Role: role, epochs: map[string]int64{}, instance: "i0", agentID: agent.NewAgentID()}
	a.port = reserve.ForTest(t, "127.0.0.1") // kept across restarts: refused while stopped
	lis, err := a.port.Listen()
	if err != nil {
		t.Fatalf("agenttest: %v", err)
	}
	a.Addr = a.port.String()
	if opts != nil {
		a.opts = opts(a.Addr)
	}
	a.serve(lis)
	t.Cleanup(a.Stop)
	return a
}

func (a *Fake) serve(lis net.Listener) {
	srv := grpc.NewServer(a.opts...)
	agentpb.RegisterAgentServer(srv, a)
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

// AgentID is the agent ID the Fake reports (and Syncs must name).
func (a *Fake) AgentID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.agentID
}

// Stop kills the agent: connections are refused until Restart.
func (a *Fake) Stop() {
	a.mu.Lock()
	srv := a.srv
	a.srv = nil
	if a.hang != nil {
		close(a.hang)
		a.hang = nil
	}
	a.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart serves again on the same address, as a new instance (a restarted
// agent remembers its generations: the real one keeps them in a state file).
func (a *Fake) Restart(instance string) {
	a.Stop()
	lis, err := a.port.Listen()
	if err != nil {
		a.t.Errorf("agenttest: %v", err) // not Fatal: may run outside the test's goroutine
		return
	}
	a.mu.Lock()
	a.instance = instance
	a.mu.Unlock()
	a.serve(lis)
}

// SetAgentID changes the agent's ID, as a lost state dir or a replaced
// machine does.
func (a *Fake) SetAgentID(id string) {
	a.mu.Lock()
	a.agentID = id
	a.mu.Unlock()
}

// SetDown makes Health answer Unavailable (SPDK gone), or not.
func (a *Fake) SetDown(down bool) {
	a.mu.Lock()
	a.down = down
	a.mu.Unlock()
}

// SetInstance changes the instance ID the agent reports, as a restarted
// SPDK does.
func (a *Fake) SetInstance(id string) {
	a.mu.Lock()
	a.instance = id
	a.mu.Unlock()
}

// SetHang makes every Sync block until Unhang, StopHanging, the agent
// stops or the caller gives up.
func (a *Fake) SetHang() {
	a.mu.Lock()
	a.hang = make(chan struct{})
	a.mu.Unlock()
}

// Unhang releases every hanging Sync, and later ones answer.
func (a *Fake) Unhang() {
	a.mu.Lock()
	if a.hang != nil {
		close(a.hang)
		a.hang = nil
	}
	a.mu.Unlock()
}

// StopHanging makes later Syncs answer; those hanging keep hanging until
// their caller gives up or the agent stops.
func (a *Fake) StopHanging() {
	a.mu.Lock()
	a.hang = nil
	a.mu.Unlock()
}

// SetScript lets fn make the reply to each Sync (or fail it) before the
// generation and epoch rules apply; nil restores OKReply.
func (a *Fake) SetScript(fn func(*agentpb.SyncRequest) (*agentpb.SyncReply, error)) {
	a.mu.Lock()
	a.script = fn
	a.mu.Unlock()
}

// SetSlowHealth makes Health answer only when the caller gives up.
func (a *Fake) SetSlowHealth(slow bool) {
	a.mu.Lock()
	a.slowHealth = slow
	a.mu.Unlock()
}

// HealthCalls counts the Health calls the agent received.
func (a *Fake) HealthCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.healths
}

// Health implements agentpb.AgentServer.
func (a *Fake) Health(ctx context.Context, _ *agentpb.HealthRequest) (*agentpb.HealthReply, error) {
	a.mu.Lock()
	a.healths++
	slow := a.slowHealth
	a.mu.Unlock()
	if slow {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return nil, status.Error(codes.Unavailable, "spdk does not answer")
	}
	var maxEpoch int64
	for _, e := range a.epochs {
		maxEpoch = max(maxEpoch, e)
	}
	return &agentpb.HealthReply{Role: string(a.Role), InstanceId: a.instance, Generation: a.applied, SpdkVersion: "fake",
		AgentId: a.agentID, GuardGeneration: a.applied, GuardMaxEpoch: maxEpoch}, nil
}

// Sync implements agentpb.AgentServer.
func (a *Fake) Sync(ctx context.Context, req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
	rec := SyncRecord{Req: proto.Clone(req).(*agentpb.SyncRequest), Seq: seq.Add(1)}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("monitor-id")) > 0 {
		rec.Monitor = md.Get("monitor-id")[0]
	}
	a.mu.Lock()
	hang, script := a.hang, a.script
	a.syncs = append(a.syncs, rec)
	a.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if (a.Role == agent.RoleDN) != (req.GetDn() != nil) {
		return nil, status.Error(codes.InvalidArgument, "wrong role")
	}
	reply := OKReply(req)
	if script != nil {
		var err error
		if reply, err = script(req); err != nil {
			return nil, err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.GetAgentId() != a.agentID {
		return nil, status.Errorf(codes.FailedPrecondition, "agent_id %s, this is agent %s", req.GetAgentId(), a.agentID)
	}
	if req.GetGeneration() < a.applied {
		return nil, status.Errorf(codes.FailedPrecondition, "generation %d < %d", req.GetGeneration(), a.applied)
	}
	epochs := req.DAEpochs()
	for da, e := range epochs {
		if e < a.epochs[da] {
			return nil, status.Errorf(codes.FailedPrecondition, "epoch %d < %d of %s", e, a.epochs[da], da)
		}
	}
	a.applied = req.GetGeneration()
	for da, e := range epochs {
		a.epochs[da] = e
	}
	reply.InstanceId, reply.Generation = a.instance, req.GetGeneration()
	return reply, nil
}

// OKReply reports every object of req as OK, with FakePDBytes PDs, and the
// DA lvstore present on every primary.
func OKReply(req *agentpb.SyncRequest) *agentpb.SyncReply {
	r := &agentpb.SyncReply{}
	for _, pd := range req.GetDn().GetPds() {
		r.Objects = append(r.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_PD, Id: pd.GetId(), Ok: true,
			TotalBytes: FakePDBytes, FreeBytes: FakePDBytes - 4<<20})
		for _, vd := range pd.GetVds() {
			r.Objects = append(r.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_VD, Id: vd.GetId(), Ok: true})
		}
	}
	for _, c := range req.GetCn().GetCntlrs() {
		r.Objects = append(r.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_CNTLR, Id: c.GetCntlrId(), Ok: true,
			DaInitialized: c.GetPrimary()})
		for _, e := range c.GetExps() {
			r.Objects = append(r.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_EXP_PORT, Id: e.GetPortId(), Ok: true})
		}
	}
	return r
}

// Records returns every Sync the agent received, in order.
func (a *Fake) Records() []SyncRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]SyncRecord(nil), a.syncs...)
}

// LastApplied returns the newest request the agent applied (nil if none).
func (a *Fake) LastApplied() *agentpb.SyncRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.syncs) - 1; i >= 0; i-- {
		if a.syncs[i].Req.GetGeneration() == a.applied {
			return a.syncs[i].Req
		}
	}
	return nil
}

// FirstSeq returns the Seq of the first Sync matching fn (0 if none).
func (a *Fake) FirstSeq(fn func(*agentpb.SyncRequest) bool) int64 {
	for _, r := range a.Records() {
		if fn(r.Req) {
			return r.Seq
		}
	}
	return 0
}
