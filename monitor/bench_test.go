package monitor

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/failover"
)

// BenchmarkFailover measures, with the default failover settings (probe
// every 400 ms, failed after 3 refused probes), the time from a controller node's
// death (its agent and SPDK killed) to each affected DA being exported by
// its new primary with ANA optimized, for 1, 100 and 1000 DAs whose
// primary is on that CN. Real agents on fake SPDKs (2 DNs, 2 CNs, DAs of
// two VDs and two controllers). Metrics: p50-ms and p99-ms over the DAs of
// every failover, all-ms (the last DA), commit-ms (death to the failover
// committed in the store, i.e. detection).
//
//	go test -run XXX -bench BenchmarkFailover -benchtime 3x ./monitor
//
// VDA_BENCH_CPUPROFILE=<file> writes a CPU profile of the failovers only
// (from each kill to the last DA promoted), without the set-up.
func BenchmarkFailover(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("das=%d", n), func(b *testing.B) { benchFailover(b, n) })
	}
}

func benchFailover(b *testing.B, n int) {
	s := newMemStore(b)
	rc := newRealClusterSized(b, s, 2, 2, uint64(n+1)*64<<20)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("da%04d", i)
		rc.createDA(names[i], 2, 2)
	}
	cfg := DefaultConfig(s, "bench")
	cfg.Insecure = true
	cfg.Failover = failover.DefaultConfig()
	cfg.Logger = testConfig(s, "bench").Logger // VDA_TEST_LOG=debug shows where the time goes
	m, _ := startMonitor(b, cfg)
	ctx := context.Background()
	converge := func() {
		eventually(b, func() bool {
			das, _, err := rc.c.ListDiskArrays(ctx, vda.Page{Limit: vda.MaxPageSize})
			require.NoError(b, err)
			for len(das) < n {
				more, _, err := rc.c.ListDiskArrays(ctx, vda.Page{Limit: vda.MaxPageSize, Token: das[len(das)-1].Name})
				require.NoError(b, err)
				das = append(das, more...)
			}
			for _, da := range das {
				if !da.Initialized || da.Status.Health != vda.HealthHealthy {
					return false
				}
			}
			return true
		}, 10*time.Minute, time.Duration(10+n/2)*time.Millisecond)
	}
	converge()
	var runs failoverRuns
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		victim := rc.node(mustPrimary(b, rc, names[0]).CNName)
		survivor := rc.cns[0]
		if survivor == victim {
			survivor = rc.cns[1]
		}
		for _, name := range names {
			require.Equal(b, victim.Addr, mustPrimary(b, rc, name).CNName, "every primary on one CN")
		}
		runs.measure(b, rc, m, victim, func(string) *realNode { return survivor }, names, rc.da(names[0]).Epoch, converge)
	}
	b.StopTimer()
	runs.report(b)
	b.ReportMetric(0, "ns/op")
}

// failoverRuns collects the failovers of a benchmark: each DA's time to
// its new primary, the slowest DA's and the failure's commit, per run.
type failoverRuns struct{ lat, last, commit []time.Duration }

// measure kills victim, waits until every DA of names is primary and
// healthy on survivor(name), then restarts victim and lets the cluster
// converge and the restarted node's hold-down pass (the next failover goes
// back to it: each measures a failover onto a stable node). Only the
// failover is timed.
func (r *failoverRuns) measure(b *testing.B, rc *realCluster, m *Monitor, victim *realNode,
	survivor func(string) *realNode, names []string, epoch int64, converge func()) {
	prof := startProfile(b)
	start := time.Now()
	victim.kill()
	got, committed := waitPromotedOn(b, rc, survivor, names, epoch, start)
	prof()
	r.lat = append(r.lat, got...)
	r.last = append(r.last, slices.Max(got))
	r.commit = append(r.commit, committed)
	b.StopTimer()
	victim.restart()
	converge()
	eventually(b, func() bool { return len(m.Stats().HeldDown) == 0 }, time.Minute, 10*time.Millisecond)
	b.StartTimer()
}

// report reports p50 and p99 over every DA, the slowest run's last DA and
// the slowest commit.
func (r *failoverRuns) report(b *testing.B) {
	lat := slices.Sorted(slices.Values(r.lat))
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(slices.Max(r.last))/float64(time.Millisecond), "all-ms")
	b.ReportMetric(float64(slices.Max(r.commit))/float64(time.Millisecond), "commit-ms")
}

// BenchmarkFailoverSpread is BenchmarkFailover on a larger cluster whose
// DAs are spread: VDA_BENCH_DAS DAs (default 10000) over 10 CNs and 10 DNs
// (two VDs and two controllers each), one CN killed; measured are the DAs
// whose primary was on it (about a tenth), each until its export on its
// other controller's CN is ANA optimized. Same metrics as BenchmarkFailover.
//
//	VDA_BENCH_DAS=10000 go test -run '^$' -bench BenchmarkFailoverSpread -benchtime 1x -timeout 60m ./monitor
func BenchmarkFailoverSpread(b *testing.B) {
	n := benchDAs(b, 10000)
	b.Run(fmt.Sprintf("das=%d/cns=10", n), func(b *testing.B) { benchFailoverSpread(b, n, 10) })
}

func benchFailoverSpread(b *testing.B, n, cns int) {
	s := newMemStore(b)
	rc := newRealClusterSized(b, s, cns, cns, uint64(2*n/cns+1)*32<<20) // 16 MiB VDs, within the malloc limit at 10,000
	ctx := context.Background()
	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				names[i] = fmt.Sprintf("da%05d", i)
				if _, err := rc.c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: names[i], CntlrCount: 2, SizeBytes: 32 << 20,
					Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}}); err != nil {
					errs <- err
					return
				}
				if _, err := rc.c.CreateExporter(ctx, vda.ExporterSpec{DAName: names[i], Name: "exp0", InitiatorNQN: initiator}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(b, <-errs)
	cfg := DefaultConfig(s, "bench")
	cfg.Insecure = true
	cfg.Failover = failover.DefaultConfig()
	cfg.Logger = testConfig(s, "bench").Logger
	m, _ := startMonitor(b, cfg)
	all := func() []vda.DiskArray {
		var das []vda.DiskArray
		for {
			page := vda.Page{Limit: vda.MaxPageSize}
			if len(das) > 0 {
				page.Token = das[len(das)-1].Name
			}
			more, _, err := rc.c.ListDiskArrays(ctx, page)
			require.NoError(b, err)
			das = append(das, more...)
			if len(more) < vda.MaxPageSize {
				return das
			}
		}
	}
	converge := func() {
		eventually(b, func() bool {
			for _, da := range all() {
				if !da.Initialized || da.Status.Health != vda.HealthHealthy {
					return false
				}
			}
			return true
		}, 60*time.Minute, time.Duration(10+n/2)*time.Millisecond)
	}
	settleStart := time.Now()
	converge()
	settled := time.Since(settleStart)
	var runs failoverRuns
	moved := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		das := all()
		victim := rc.node(mustPrimary(b, rc, das[0].Name).CNName)
		var affected []string
		survivor := map[string]*realNode{}
		for _, da := range das {
			p, _ := da.Primary()
			if p.CNName != victim.Addr {
				continue
			}
			for _, c := range da.Cntlrs {
				if c.ID != p.ID {
					survivor[da.Name] = rc.node(c.CNName)
				}
			}
			affected = append(affected, da.Name)
		}
		moved = len(affected)
		runs.measure(b, rc, m, victim, func(name string) *realNode { return survivor[name] }, affected, das[0].Epoch, converge)
	}
	b.StopTimer()
	runs.report(b)
	b.ReportMetric(float64(moved), "moved-das")
	b.ReportMetric(settled.Seconds(), "settle-s")
	b.ReportMetric(0, "ns/op")
}

// startProfile starts the CPU profile of VDA_BENCH_CPUPROFILE (one file
// per failover, suffixed with the benchmark name and a counter) and returns
// its stop.
func startProfile(b *testing.B) func() {
	path := os.Getenv("VDA_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	profiles++
	f, err := os.Create(fmt.Sprintf("%s.%s.%d", path, strings.ReplaceAll(b.Name(), "/", "_"), profiles))
	require.NoError(b, err)
	require.NoError(b, pprof.StartCPUProfile(f))
	return func() {
		pprof.StopCPUProfile()
		require.NoError(b, f.Close())
	}
}

var profiles int

func mustPrimary(b *testing.B, rc *realCluster, name string) vda.Cntlr {
	p, ok := rc.da(name).Primary()
	require.True(b, ok)
	return p
}

// waitPromotedOn polls each DA's new primary, on the node survivor(name),
// until every DA's export there is ANA optimized and returns, per DA, the
// time since start; and when the first DA's epoch moved past epoch (the
// failover commit).
func waitPromotedOn(b *testing.B, rc *realCluster, survivor func(name string) *realNode, names []string, epoch int64,
	start time.Time) ([]time.Duration, time.Duration) {
	pending := slices.Clone(names)
	var out []time.Duration
	var committed time.Duration
	deadline := start.Add(10 * time.Minute)
	for len(pending) > 0 {
		require.True(b, time.Now().Before(deadline), "%d DAs never promoted", len(pending))
		if committed == 0 && rc.da(names[0]).Epoch > epoch {
			committed = time.Since(start)
		}
		var mu sync.Mutex
		var next []string
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, name := range pending {
			wg.Add(1)
			sem <- struct{}{}
			nqn := expNQN(b, name) // may fail b: not in the goroutine
			go func() {
				defer func() { <-sem; wg.Done() }()
				ok := survivor(name).anaOptimized(nqn)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					out = append(out, time.Since(start))
				} else {
					next = append(next, name)
				}
			}()
		}
		wg.Wait()
		pending = next
		if len(pending) > 0 {
			// Polling interval of a measurement, not synchronisation; longer
			// for many DAs so the polls do not load the SPDK being measured.
			time.Sleep(time.Duration(5+len(names)/10) * time.Millisecond)
		}
	}
	if committed == 0 {
		committed = time.Since(start)
	}
	return out, committed
}
