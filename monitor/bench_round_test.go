package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// BenchmarkMonitorRound measures one monitor round at n DAs, on the
// cluster of BenchmarkMonitorMemory once every DA is healthy and the store
// quiet: from a spec change that changes no node's state (a CN's
// location) to the monitor dispatching the plan of that revision (its
// snapshot, the failover decision, the plan and the offers to every
// worker). Metrics: round-ms p50 and max, alloc-MiB per round (the
// whole process), and from the cold start: settle-s (the monitor's start to
// every DA healthy) and settle-rounds (rounds run until the store was quiet).
//
//	VDA_BENCH_DAS=10000 go test -run '^$' -bench BenchmarkMonitorRound -benchtime 20x -timeout 60m ./monitor
//
// VDA_BENCH_DAS overrides the size (default 10000).
func BenchmarkMonitorRound(b *testing.B) {
	n := benchDAs(b, 10000)
	b.Run(fmt.Sprintf("das=%d", n), func(b *testing.B) {
		b.StopTimer()
		s := newMemStore(b)
		populateBench(b, s, n)
		cfg := benchMonitorConfig(s)
		started := time.Now()
		m, stop := startMonitor(b, cfg)
		defer stop()
		waitAllHealthy(b, nil, n, s)
		settled := time.Since(started)
		waitQuiet(b, s)
		startRounds := m.rounds.Load()
		dispatched := func() int64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.snap == nil {
				return 0
			}
			return m.snap.Revision
		}
		var lat []time.Duration
		var alloc uint64
		var ms runtime.MemStats
		for i := 0; i < b.N; i++ {
			time.Sleep(2 * cfg.RoundInterval) // the next round is not paced
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			b.StartTimer()
			start := time.Now()
			rev := setCNLocation(b, s, "cn000", fmt.Sprint("cn-rack-", i))
			eventually(b, func() bool { return dispatched() >= rev }, time.Minute, time.Millisecond)
			lat = append(lat, time.Since(start))
			b.StopTimer()
			runtime.ReadMemStats(&ms)
			alloc += ms.TotalAlloc - before
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2])/float64(time.Millisecond), "round-ms")
		b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
		b.ReportMetric(float64(alloc)/float64(b.N)/(1<<20), "alloc-MiB/round")
		b.ReportMetric(settled.Seconds(), "settle-s")
		b.ReportMetric(float64(startRounds), "settle-rounds")
		b.ReportMetric(0, "ns/op")
	})
}

// benchDAs is VDA_BENCH_DAS, or def.
func benchDAs(b *testing.B, def int) int {
	if v := os.Getenv("VDA_BENCH_DAS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		return n
	}
	return def
}

// benchMonitorConfig is a monitor of s whose agents are a sinkTransport.
func benchMonitorConfig(s store.Store) Config {
	cfg := testConfig(s, "m1")
	cfg.Transport = &sinkTransport{}
	cfg.DialOptions, cfg.Insecure = nil, false
	def := DefaultConfig(s, "m1")
	cfg.SyncTimeout, cfg.BackoffMin, cfg.BackoffMax = 5*time.Minute, def.BackoffMin, def.BackoffMax
	return cfg
}

// populateBench creates, through the Cluster API, 100 DNs with a PD each,
// 50 CNs (cn000...) and n DAs (2 VDs, 2 controllers, an exporter each).
func populateBench(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(b, err)
	defer c.Close()
	for i := range 100 {
		name := fmt.Sprintf("dn%03d", i)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: name, Listener: listener(fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), "4420"),
			Location: fmt.Sprint("dn-rack", i%10)})
		require.NoError(b, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: name, Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: fakePDBytes}})
		require.NoError(b, err)
	}
	for i := range 50 {
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("cn%03d", i), Listener: listener(fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), "4430"),
			Location: fmt.Sprint("cn-rack", i%5)})
		require.NoError(b, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				name := fmt.Sprintf("da%06d", i)
				if _, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: name, CntlrCount: 2, SizeBytes: 16 << 20,
					Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}}); err != nil {
					errs <- err
					return
				}
				if _, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: name, Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(b, <-errs)
}

// setCNLocation sets a CN's location in the store and returns the
// revision of the write.
func setCNLocation(b *testing.B, s store.Store, name, location string) int64 {
	ctx := context.Background()
	kv, err := s.Get(ctx, vda.KeyCN(name))
	require.NoError(b, err)
	var cn vda.ControllerNode
	require.NoError(b, json.Unmarshal(kv.Value, &cn))
	cn.Location = location
	v, err := json.Marshal(cn)
	require.NoError(b, err)
	res, err := s.Txn(ctx, store.Txn{Conds: []store.Cond{{Key: kv.Key, ModRevision: kv.ModRevision}}, Ops: []store.Op{{Key: kv.Key, Value: v}}})
	require.NoError(b, err)
	require.True(b, res.Succeeded)
	return res.Revision
}
