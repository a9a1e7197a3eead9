package monitor

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/store"
)

// BenchmarkMonitorNodes: nodes test agents (agenttest.Fake over gRPC on
// loopback, half DNs, half CNs) and one DA per node (2 VDs, 2 controllers,
// an exporter), driven by two monitors with the default timings (a probe
// of every node every 400 ms, a resync every 30 s). Metrics: sync-s (from
// the monitors' start to every DA healthy), then over a steady window
// (VDA_BENCH_STEADY, default 10s) with nothing changing: cpu-ms/node/s
// (the process's CPU time, monitors and test agents together, per node
// and second), writes/s (store transactions that write, lease renewals
// apart: status is written only on change, so this should be 0),
// renewals/s and probes/node/s. VDA_BENCH_NODES=<n> runs n nodes only.
//
//	go test -run '^$' -bench BenchmarkMonitorNodes -benchtime 1x ./monitor
func BenchmarkMonitorNodes(b *testing.B) {
	sizes := []int{100, 1000}
	if v := os.Getenv("VDA_BENCH_NODES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		sizes = []int{n}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchMonitorNodes(b, n)
			}
		})
	}
}

func benchMonitorNodes(b *testing.B, n int) {
	b.StopTimer()
	cs := &countingStore{Store: newMemStore(b)}
	tc := newTestCluster(b, cs, n/2, n-n/2)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("da%04d", i)
		tc.createDA(names[i], 2, 2)
	}
	start := time.Now()
	for _, id := range []string{"m1", "m2"} {
		cfg := testConfig(cs, id)
		def := DefaultConfig(cs, id)
		cfg.Failover = failover.DefaultConfig()
		cfg.LeaseTTL, cfg.ResyncInterval, cfg.SyncTimeout = def.LeaseTTL, def.ResyncInterval, def.SyncTimeout
		cfg.BackoffMin, cfg.BackoffMax, cfg.PhaseTimeout, cfg.HealthTimeout = def.BackoffMin, def.BackoffMax, def.PhaseTimeout, def.HealthTimeout
		startMonitor(b, cfg)
	}
	waitAllHealthy(b, tc.c, n)
	synced := time.Since(start)
	for _, a := range tc.all() {
		require.NotNil(b, a.LastApplied(), "node %s never synced", a.Addr)
	}

	window := steadyWindow(b)
	probes := func() (sum int) {
		for _, a := range tc.all() {
			sum += a.HealthCalls()
		}
		return sum
	}
	w0, r0, p0, cpu0 := cs.writes.Load(), cs.renewals.Load(), probes(), cpuTime(b)
	// A measurement window, not synchronisation: nothing changes in it.
	time.Sleep(window)
	w1, r1, p1, cpu1 := cs.writes.Load(), cs.renewals.Load(), probes(), cpuTime(b)
	sec := window.Seconds()
	b.ReportMetric(synced.Seconds(), "sync-s")
	b.ReportMetric(float64(cpu1-cpu0)/float64(time.Millisecond)/float64(n)/sec, "cpu-ms/node/s")
	b.ReportMetric(float64(w1-w0)/sec, "writes/s")
	b.ReportMetric(float64(r1-r0)/sec, "renewals/s")
	b.ReportMetric(float64(p1-p0)/float64(n)/sec, "probes/node/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMonitorMemory: the heap a monitor holds for a cluster of das DAs
// (2 VDs, 2 controllers, an exporter each) on 100 DNs and 50 CNs, once
// every DA is healthy and the monitor has stopped writing: the live heap
// after a GC with the monitor running less the live heap once it stopped
// (monitor-MiB);
// and the same for a Cluster, the portal's state, after a create (which
// loads its candidate cache) and a paged list of every DA (portal-MiB).
// The agents are a minimal in-process Transport that keeps no copy of what
// it is sent, so the figure is the monitor's own.
//
//	go test -run '^$' -bench BenchmarkMonitorMemory -benchtime 1x -timeout 60m ./monitor
//
// VDA_BENCH_DAS overrides the size (default 100000); VDA_BENCH_MEMPROFILE=<file>
// writes the heap profiles <file>.monitor and <file>.portal at the two
// measurements.
func BenchmarkMonitorMemory(b *testing.B) {
	n := benchDAs(b, 100000)
	b.Run(fmt.Sprintf("das=%d", n), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			benchMonitorMemory(b, n)
		}
	})
}

func benchMonitorMemory(b *testing.B, n int) {
	b.StopTimer()
	ctx := context.Background()
	s := newMemStore(b)
	populateBench(b, s, n)
	cfg := benchMonitorConfig(s)
	_, stop := startMonitor(b, cfg)
	waitAllHealthy(b, nil, n, s)
	waitQuiet(b, s)
	running := liveHeap()
	writeHeapProfile(b, "monitor")
	stop()
	mon := running - liveHeap() // what the monitor held (the store keeps what it wrote)

	base := liveHeap()
	pc, err := vda.New(vda.DefaultConfig(s))
	require.NoError(b, err)
	defer pc.Close()
	_, err = pc.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "extra", CntlrCount: 2, SizeBytes: 16 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(b, err)
	listAll(b, pc, n+1)
	portal := liveHeap() - base
	writeHeapProfile(b, "portal")
	runtime.KeepAlive(pc)
	b.ReportMetric(float64(mon)/(1<<20), "monitor-MiB")
	b.ReportMetric(float64(portal)/(1<<20), "portal-MiB")
	b.ReportMetric(0, "ns/op")
}

// writeHeapProfile writes the heap profile to VDA_BENCH_MEMPROFILE.<name>
// if that is set.
func writeHeapProfile(b *testing.B, name string) {
	path := os.Getenv("VDA_BENCH_MEMPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path + "." + name)
	require.NoError(b, err)
	defer f.Close()
	require.NoError(b, pprof.Lookup("heap").WriteTo(f, 0))
}

// liveHeap is the live heap after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// listAll pages through every DA of c and checks there are n.
func listAll(b *testing.B, c *vda.Cluster, n int) []vda.DiskArray {
	ctx := context.Background()
	var all []vda.DiskArray
	tok := ""
	for {
		das, next, err := c.ListDiskArrays(ctx, vda.Page{Limit: vda.MaxPageSize, Token: tok})
		require.NoError(b, err)
		all = append(all, das...)
		if next == "" {
			break
		}
		tok = next
	}
	require.Len(b, all, n)
	return all
}

// waitAllHealthy waits until n DAs are initialized and healthy, reading
// through c, or a new Cluster on s[0] if c is nil.
func waitAllHealthy(b *testing.B, c *vda.Cluster, n int, s ...store.Store) {
	if c == nil {
		var err error
		c, err = vda.New(vda.DefaultConfig(s[0]))
		require.NoError(b, err)
		defer c.Close()
	}
	eventually(b, func() bool {
		for _, da := range listAll(b, c, n) {
			if !da.Initialized || da.Status.Health != vda.HealthHealthy {
				return false
			}
		}
		return true
	}, 30*time.Minute, time.Duration(100+n/100)*time.Millisecond)
}

// waitQuiet waits until the store's revision has not moved for a second
// (the monitor is done writing statuses, so its rounds are over).
func waitQuiet(b *testing.B, s store.Store) {
	ctx := context.Background()
	last, err := s.Revision(ctx)
	require.NoError(b, err)
	since := time.Now()
	eventually(b, func() bool {
		rev, err := s.Revision(ctx)
		require.NoError(b, err)
		if rev != last {
			last, since = rev, time.Now()
		}
		return time.Since(since) >= time.Second
	}, 10*time.Minute, 100*time.Millisecond)
}

// steadyWindow is VDA_BENCH_STEADY, default 10 s.
func steadyWindow(b *testing.B) time.Duration {
	if v := os.Getenv("VDA_BENCH_STEADY"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err)
		return d
	}
	return 10 * time.Second
}

// cpuTime is the process's user and system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingStore counts the transactions that write, lease renewals,
// reads of status keys and all reads, the transactions that read or write
// a status key (a status write that read nothing still checks what it
// assumed in one) and the transactions whose conditions failed.
type countingStore struct {
	store.Store
	writes, renewals, statusReads, reads, statusTxns, failedTxns atomic.Int64
	onTxn                                                        func(store.Txn) // if set, sees each Txn first
}

func (s *countingStore) Get(ctx context.Context, key string) (store.KV, error) {
	s.reads.Add(1)
	if strings.HasPrefix(key, vda.PrefixStatus) {
		s.statusReads.Add(1)
	}
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	if s.onTxn != nil {
		s.onTxn(t)
	}
	status := func(key string) bool { return strings.HasPrefix(key, vda.PrefixStatus) }
	if slices.ContainsFunc(t.Conds, func(c store.Cond) bool { return status(c.Key) }) ||
		slices.ContainsFunc(t.Ops, func(o store.Op) bool { return status(o.Key) }) {
		s.statusTxns.Add(1)
	}
	r, err := s.Store.Txn(ctx, t)
	if err == nil && r.Succeeded && len(t.Ops) > 0 {
		s.writes.Add(1)
	}
	if err == nil && !r.Succeeded {
		s.failedTxns.Add(1)
	}
	return r, err
}

func (s *countingStore) KeepAlive(ctx context.Context, id store.LeaseID) error {
	s.renewals.Add(1)
	return s.Store.KeepAlive(ctx, id)
}

// sinkTransport answers every node as a healthy agent that applies what
// it is sent (OKReply) and keeps only its generation and highest epoch.
type sinkTransport struct {
	mu    sync.Mutex
	nodes map[string]*sinkNode
}

type sinkNode struct {
	id                string // the agent ID
	applied, maxEpoch int64
}

func (t *sinkTransport) Dial(_ context.Context, tg Target) (AgentConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nodes == nil {
		t.nodes = map[string]*sinkNode{}
	}
	if t.nodes[tg.Address] == nil {
		t.nodes[tg.Address] = &sinkNode{id: agent.NewAgentID()}
	}
	return &sinkConn{t: t, n: t.nodes[tg.Address], target: tg}, nil
}

type sinkConn struct {
	agentpb.AgentClient // the calls the monitor does not make here
	t                   *sinkTransport
	n                   *sinkNode
	target              Target
}

func (c *sinkConn) Close() error { return nil }

func (c *sinkConn) Health(context.Context, *agentpb.HealthRequest, ...grpc.CallOption) (*agentpb.HealthReply, error) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	role := "dn"
	if c.target.Role == RoleCN {
		role = "cn"
	}
	return &agentpb.HealthReply{Role: role, InstanceId: "sink", Generation: c.n.applied, SpdkVersion: "sink",
		AgentId: c.n.id, GuardGeneration: c.n.applied, GuardMaxEpoch: c.n.maxEpoch, NodeName: c.target.Name}, nil
}

func (c *sinkConn) Sync(_ context.Context, req *agentpb.SyncRequest, _ ...grpc.CallOption) (*agentpb.SyncReply, error) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	if req.GetGeneration() < c.n.applied {
		return nil, status.Errorf(codes.FailedPrecondition, "generation %d < %d", req.GetGeneration(), c.n.applied)
	}
	c.n.applied = req.GetGeneration()
	for _, e := range req.DAEpochs() {
		c.n.maxEpoch = max(c.n.maxEpoch, e)
	}
	reply := agenttest.OKReply(req)
	reply.InstanceId, reply.Generation = "sink", req.GetGeneration()
	return reply, nil
}
