package monitor

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
	"github.com/vda-io/vda/store"
)

// fakePDBytes is the capacity the fake agents report for every PD (and the
// malloc size the test clusters configure).
const fakePDBytes = 64 << 30

// seq orders events across every fake agent of a test binary.
var seq atomic.Int64

// syncRecord is one Sync a fake agent received.
type syncRecord struct {
	req     *agentpb.SyncRequest
	monitor string // the caller's "monitor-id" metadata (set by the tests' dial option)
	seq     int64
}

// fakeAgent is a scripted agentpb.AgentServer on 127.0.0.1:0. It enforces
// the generation and epoch rules of the real agent, records every Sync and
// replies with every object OK unless scripted otherwise.
type fakeAgent struct {
	agentpb.UnimplementedAgentServer
	t    testing.TB
	role Role
	port *reserve.Port
	addr string

	mu         sync.Mutex
	srv        *grpc.Server
	syncs      []syncRecord
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
	synced chan struct{} // poked after every applied Sync
}

func newFakeAgent(t testing.TB, role Role) *fakeAgent {
	return newFakeAgentWith(t, role, nil)
}

// newFakeAgentWith is newFakeAgent whose server gets the options opts
// returns for its address (e.g. TLS credentials naming it).
func newFakeAgentWith(t testing.TB, role Role, opts func(addr string) []grpc.ServerOption) *fakeAgent {
	a := &fakeAgent{t: t, role: role, epochs: map[string]int64{}, instance: "i0", agentID: agent.NewAgentID(),
		synced: make(chan struct{}, 1)}
	a.port = reserve.ForTest(t, "127.0.0.1") // kept across restarts: refused while stopped
	lis, err := a.port.Listen()
	require.NoError(t, err)
	a.addr = a.port.String()
	if opts != nil {
		a.opts = opts(a.addr)
	}
	a.serve(lis)
	t.Cleanup(a.stop)
	return a
}

func (a *fakeAgent) serve(lis net.Listener) {
	srv := grpc.NewServer(a.opts...)
	agentpb.RegisterAgentServer(srv, a)
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

// stop kills the agent: connections are refused until restart.
func (a *fakeAgent) stop() {
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

// restart serves again on the same address, as a new instance (a restarted
// agent remembers its generations: the real one keeps them in a state file).
func (a *fakeAgent) restart(instance string) {
	a.stop()
	lis, err := a.port.Listen()
	require.NoError(a.t, err)
	a.mu.Lock()
	a.instance = instance
	a.mu.Unlock()
	a.serve(lis)
}

// setAgentID changes the agent's ID, as a lost state dir or a replaced
// machine does.
func (a *fakeAgent) setAgentID(id string) {
	a.mu.Lock()
	a.agentID = id
	a.mu.Unlock()
}

func (a *fakeAgent) setDown(down bool) {
	a.mu.Lock()
	a.down = down
	a.mu.Unlock()
}

func (a *fakeAgent) setInstance(id string) {
	a.mu.Lock()
	a.instance = id
	a.mu.Unlock()
}

// setHang makes every Sync block until unhang (or the agent stops).
func (a *fakeAgent) setHang() {
	a.mu.Lock()
	a.hang = make(chan struct{})
	a.mu.Unlock()
}

func (a *fakeAgent) unhang() {
	a.mu.Lock()
	if a.hang != nil {
		close(a.hang)
		a.hang = nil
	}
	a.mu.Unlock()
}

func (a *fakeAgent) setScript(fn func(*agentpb.SyncRequest) (*agentpb.SyncReply, error)) {
	a.mu.Lock()
	a.script = fn
	a.mu.Unlock()
}

// setSlowHealth makes Health answer only when the caller gives up.
func (a *fakeAgent) setSlowHealth(slow bool) {
	a.mu.Lock()
	a.slowHealth = slow
	a.mu.Unlock()
}

func (a *fakeAgent) healthCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.healths
}

func (a *fakeAgent) Health(ctx context.Context, _ *agentpb.HealthRequest) (*agentpb.HealthReply, error) {
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
	return &agentpb.HealthReply{Role: a.role.String(), InstanceId: a.instance, Generation: a.applied, SpdkVersion: "fake",
		AgentId: a.agentID, GuardGeneration: a.applied, GuardMaxEpoch: maxEpoch}, nil
}

func (a *fakeAgent) Sync(ctx context.Context, req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
	rec := syncRecord{req: proto.Clone(req).(*agentpb.SyncRequest), seq: seq.Add(1)}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("monitor-id")) > 0 {
		rec.monitor = md.Get("monitor-id")[0]
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
	if (a.role == RoleDN) != (req.GetDn() != nil) {
		return nil, status.Error(codes.InvalidArgument, "wrong role")
	}
	reply := okReply(req)
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
	epochs := daEpochs(req)
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
	select {
	case a.synced <- struct{}{}:
	default:
	}
	return reply, nil
}

func daEpochs(req *agentpb.SyncRequest) map[string]int64 {
	out := map[string]int64{}
	for _, pd := range req.GetDn().GetPds() {
		for _, vd := range pd.GetVds() {
			out[vd.GetDaId()] = vd.GetEpoch()
		}
	}
	for _, c := range req.GetCn().GetCntlrs() {
		out[c.GetDa().GetId()] = c.GetEpoch()
	}
	return out
}

// okReply reports every object of req as OK, with fakePDBytes PDs, and the DA
// lvstore present on every primary.
func okReply(req *agentpb.SyncRequest) *agentpb.SyncReply {
	r := &agentpb.SyncReply{}
	for _, pd := range req.GetDn().GetPds() {
		r.Objects = append(r.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_PD, Id: pd.GetId(), Ok: true,
			TotalBytes: fakePDBytes, FreeBytes: fakePDBytes - 4<<20})
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

func (a *fakeAgent) records() []syncRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]syncRecord(nil), a.syncs...)
}

// lastApplied returns the newest request the agent applied (nil if none).
func (a *fakeAgent) lastApplied() *agentpb.SyncRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.syncs) - 1; i >= 0; i-- {
		if a.syncs[i].req.GetGeneration() == a.applied {
			return a.syncs[i].req
		}
	}
	return nil
}

// firstSeq returns the seq of the first Sync matching fn (0 if none).
func (a *fakeAgent) firstSeq(fn func(*agentpb.SyncRequest) bool) int64 {
	for _, r := range a.records() {
		if fn(r.req) {
			return r.seq
		}
	}
	return 0
}

// cluster is a test cluster whose nodes are fake agents.
type cluster struct {
	t   testing.TB
	s   store.Store
	c   *vda.Cluster
	dns []*fakeAgent
	cns []*fakeAgent
}

func newTestCluster(t testing.TB, s store.Store, dns, cns int) *cluster {
	ctx := context.Background()
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	tc := &cluster{t: t, s: s, c: c}
	for i := 0; i < dns; i++ {
		a := newFakeAgent(t, RoleDN)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: a.addr, ListenerConf: listenerConf(fmt.Sprintf("10.0.0.%d", i+1), "4420"),
			Location: fmt.Sprint("dn-rack", i)})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: a.addr, Name: "pd0", Conf: fmt.Sprintf(`{"type":"malloc","size":%d}`, fakePDBytes)})
		require.NoError(t, err)
		tc.dns = append(tc.dns, a)
	}
	for i := 0; i < cns; i++ {
		a := newFakeAgent(t, RoleCN)
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: a.addr, ListenerConf: listenerConf(fmt.Sprintf("10.0.1.%d", i+1), "4430"),
			Location: fmt.Sprint("cn-rack", i)})
		require.NoError(t, err)
		tc.cns = append(tc.cns, a)
	}
	return tc
}

// createDA creates a DA of stripes VDs and cntlrs controllers with one
// exporter.
func (tc *cluster) createDA(name string, stripes, cntlrs int) vda.DiskArray {
	ctx := context.Background()
	_, err := tc.c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: name, CntlrCount: cntlrs, SizeBytes: 16 << 20,
		Conf: vda.DAConf{StripeCount: stripes, StripeSizeKB: 64}})
	require.NoError(tc.t, err)
	_, err = tc.c.CreateExporter(ctx, vda.ExporterSpec{DAName: name, Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"})
	require.NoError(tc.t, err)
	da, err := tc.c.GetDiskArray(ctx, name)
	require.NoError(tc.t, err)
	return da
}

func (tc *cluster) agent(name string) *fakeAgent {
	for _, a := range append(append([]*fakeAgent(nil), tc.dns...), tc.cns...) {
		if a.addr == name {
			return a
		}
	}
	tc.t.Fatalf("no agent %s", name)
	return nil
}

func (tc *cluster) da(name string) vda.DiskArray {
	da, err := tc.c.GetDiskArray(context.Background(), name)
	require.NoError(tc.t, err)
	return da
}

// testConfig has short timings; id is sent to agents as "monitor-id".
func testConfig(s store.Store, id string) Config {
	cfg := DefaultConfig(s, id)
	cfg.LeaseTTL = 400 * time.Millisecond
	cfg.ResyncInterval = time.Hour
	cfg.SyncTimeout = 5 * time.Second
	cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
	cfg.PhaseTimeout = time.Second
	// A dead agent is refused at once (failed after 3 probes, ~90 ms); a
	// slow one (-race on a loaded machine, busy with a large Sync) is failed
	// only after 20 s without an answer, so it is not failed over. Tests of
	// timeouts and hold-down set their own.
	cfg.Failover.Interval, cfg.Failover.MissThreshold, cfg.Failover.Window = 30*time.Millisecond, 3, 10*time.Second
	cfg.Failover.SlowTimeout = 20 * time.Second
	cfg.HealthTimeout = 2 * time.Second
	cfg.Insecure = true
	if lvl := os.Getenv("VDA_TEST_LOG"); lvl != "" {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(lvl), Output: os.Stderr})
	}
	cfg.DialOptions = []grpc.DialOption{grpc.WithUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return inv(metadata.AppendToOutgoingContext(ctx, "monitor-id", id), method, req, reply, cc, opts...)
		})}
	return cfg
}

// startMonitor runs a monitor until the test ends (or stop is called).
func startMonitor(t testing.TB, cfg Config) (*Monitor, func()) {
	m, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
		})
	}
	t.Cleanup(stop)
	return m, stop
}

// converged reports whether a's last applied state is what the planner
// builds from the store now.
func (tc *cluster) converged(a *fakeAgent) bool {
	snap, err := LoadSnapshot(context.Background(), tc.s)
	require.NoError(tc.t, err)
	var want *agentpb.SyncRequest
	for _, np := range Build(snap).Nodes {
		if np.Name == a.addr {
			want = np.Request
		}
	}
	got := a.lastApplied()
	if want == nil || got == nil {
		return false
	}
	want = proto.Clone(want).(*agentpb.SyncRequest)
	want.Generation, want.StoreRevision = got.GetGeneration(), got.GetStoreRevision()
	return proto.Equal(want, got)
}

func (tc *cluster) allConverged(agents ...*fakeAgent) bool {
	for _, a := range agents {
		if !tc.converged(a) {
			return false
		}
	}
	return true
}

func (tc *cluster) all() []*fakeAgent { return append(append([]*fakeAgent(nil), tc.dns...), tc.cns...) }

func hostNQNOf(req *agentpb.SyncRequest, daID string) string {
	for _, pd := range req.GetDn().GetPds() {
		for _, vd := range pd.GetVds() {
			if vd.GetDaId() == daID {
				return vd.GetHostNqn()
			}
		}
	}
	return ""
}

func isPrimaryFor(req *agentpb.SyncRequest, cntlrID string) bool {
	for _, c := range req.GetCn().GetCntlrs() {
		if c.GetCntlrId() == cntlrID {
			return c.GetPrimary()
		}
	}
	return false
}

var _ = nvmeof.HostNQN
