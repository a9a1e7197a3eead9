package monitor

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/store"
)

// fakePDBytes is the capacity the fake agents report for every PD (and the
// malloc size the test clusters configure).
const fakePDBytes = agenttest.FakePDBytes

// okReply is the fake agents' default reply.
var okReply = agenttest.OKReply

// cluster is a test cluster whose nodes are fake agents.
type cluster struct {
	t   testing.TB
	s   store.Store
	c   *vda.Cluster
	dns []*agenttest.Fake
	cns []*agenttest.Fake
}

func newTestCluster(t testing.TB, s store.Store, dns, cns int) *cluster {
	ctx := context.Background()
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	tc := &cluster{t: t, s: s, c: c}
	for i := 0; i < dns; i++ {
		a := agenttest.NewFake(t, agent.RoleDN)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: a.Addr, Listener: listener(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "4420"),
			Location: fmt.Sprint("dn-rack", i)})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: a.Addr, Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: fakePDBytes}})
		require.NoError(t, err)
		tc.dns = append(tc.dns, a)
	}
	for i := 0; i < cns; i++ {
		a := agenttest.NewFake(t, agent.RoleCN)
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: a.Addr, Listener: listener(fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), "4430"),
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

func (tc *cluster) agent(name string) *agenttest.Fake {
	for _, a := range append(append([]*agenttest.Fake(nil), tc.dns...), tc.cns...) {
		if a.Addr == name {
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
func (tc *cluster) converged(a *agenttest.Fake) bool {
	snap, err := LoadSnapshot(context.Background(), tc.s)
	require.NoError(tc.t, err)
	var want *agentpb.SyncRequest
	for _, np := range Build(snap).Nodes {
		if np.Name == a.Addr {
			want = np.Request
		}
	}
	got := a.LastApplied()
	if want == nil || got == nil {
		return false
	}
	want = proto.Clone(want).(*agentpb.SyncRequest)
	want.Generation, want.StoreRevision = got.GetGeneration(), got.GetStoreRevision()
	return proto.Equal(want, got)
}

func (tc *cluster) allConverged(agents ...*agenttest.Fake) bool {
	for _, a := range agents {
		if !tc.converged(a) {
			return false
		}
	}
	return true
}

func (tc *cluster) all() []*agenttest.Fake {
	return append(append([]*agenttest.Fake(nil), tc.dns...), tc.cns...)
}

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

// eventually waits until cond holds, calling it every tick on the test's
// goroutine, so that cond may use require (a require.Eventually callback
// runs on a goroutine of its own, which can outlive the test and then
// panics the whole binary). It waits as long as the test binary may run
// (its -timeout, less a minute to report), at least atLeast: a slow machine
// makes a test slower, not failed; a condition that never holds fails the
// test before the binary's timeout kills it without a word.
func eventually(t testing.TB, cond func() bool, atLeast, tick time.Duration, msgAndArgs ...any) {
	t.Helper()
	limit := time.Now().Add(atLeast)
	if dl, ok := deadline(t); ok && dl.Add(-time.Minute).After(limit) {
		limit = dl.Add(-time.Minute)
	}
	for !cond() {
		if time.Now().After(limit) {
			require.Fail(t, "condition never held", msgAndArgs...)
		}
		time.Sleep(tick)
	}
}

// deadline is t's deadline, for tests and benchmarks.
func deadline(t testing.TB) (time.Time, bool) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		return d.Deadline()
	}
	return time.Time{}, false
}
