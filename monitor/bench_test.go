package monitor

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
// committed in the store, i.e. detection). A DA's time ends when the fake
// set its listener optimized (the benchmark polls the fakes, and reads when
// that happened); seen-p99-ms is p99 of when the poll saw it, which is what
// the benchmark reported before round 9.
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
	// Every DA's primary on the first CN: placement spreads primaries over
	// equally loaded CNs, and the benchmark fails one CN with all n.
	ccfg := vda.DefaultConfig(s)
	ccfg.Placer = primaryOn{cn: rc.cns[0].Addr}
	c, err := vda.New(ccfg)
	require.NoError(b, err)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("da%04d", i)
		_, err := c.CreateDiskArray(context.Background(), vda.DiskArraySpec{Name: names[i], CntlrCount: 2, SizeBytes: 32 << 20,
			Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
		require.NoError(b, err)
		_, err = c.CreateExporter(context.Background(), vda.ExporterSpec{DAName: names[i], Name: "exp0", InitiatorNQN: initiator})
		require.NoError(b, err)
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
			// And every export served on both controllers: a secondary that
			// has not attached its proxy yet has less to drop when promoted
			// (a first failover 0.5 s faster than the rest, round 10).
			for _, name := range names {
				e, err := rc.c.GetExporter(ctx, name, "exp0")
				if err != nil || e.Status.Health != vda.HealthHealthy {
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
		runs.measure(b, rc.da, m, victim, func(string) failoverNode { return survivor }, names, rc.da(names[0]).Epoch, converge, false)
	}
	b.StopTimer()
	runs.report(b)
	b.ReportMetric(0, "ns/op")
}

// primaryOn places as vda.DefaultPlacer, with controller node cn (when
// chosen) as the primary.
type primaryOn struct{ cn string }

func (p primaryOn) Place(req vda.PlacementRequest, c vda.Candidates) (vda.Placement, error) {
	pl, err := vda.DefaultPlacer{}.Place(req, c)
	if i := slices.IndexFunc(pl.CNs, func(n vda.ControllerNode) bool { return n.Name == p.cn }); i > 0 {
		pl.CNs[0], pl.CNs[i] = pl.CNs[i], pl.CNs[0]
	}
	return pl, err
}

// failoverNode is a node a failover benchmark kills, restarts and polls:
// a realNode, or a spreadNode whose SPDK is a process of its own.
type failoverNode interface {
	kill()
	restart()
	anaOptimized(nqn string) bool
	// promotedAt says when the node's export nqn became ANA optimized,
	// false if it is not: as exact as the node can tell (an in-process
	// fake records it; a process of its own is polled, so its answer is
	// when it was seen).
	promotedAt(nqn string) (time.Time, bool)
}

// failoverRuns collects the failovers of a benchmark: each DA's time to
// its new primary, the slowest DA's and the failure's commit, per run.
// seen is when the benchmark's poll saw each DA promoted, as the
// benchmark measured before it read the fakes' own times (round 9).
type failoverRuns struct{ lat, seen, last, commit []time.Duration }

// measure kills victim, waits until every DA of names is primary and
// healthy on survivor(name), then restarts victim and lets the cluster
// converge and the restarted node's hold-down pass (the next failover goes
// back to it: each measures a failover onto a stable node). Only the
// failover is timed. last leaves victim dead: no failover follows on this
// cluster (at 10,000 DAs rebuilding a CN of 2,000 controllers from empty
// would be most of the benchmark's time).
func (r *failoverRuns) measure(b *testing.B, da func(name string) vda.DiskArray, m *Monitor, victim failoverNode,
	survivor func(string) failoverNode, names []string, epoch int64, converge func(), last bool) {
	prof := startProfile(b)
	start := time.Now()
	victim.kill()
	got, seen, committed := waitPromotedOn(b, da, survivor, names, epoch, start)
	prof()
	if at := m.Stats().LastFailover; at.After(start) {
		committed = at.Sub(start) // when this monitor committed the last move, not when the poll saw the first
	}
	r.lat = append(r.lat, got...)
	r.seen = append(r.seen, seen...)
	r.last = append(r.last, slices.Max(got))
	r.commit = append(r.commit, committed)
	if last {
		return
	}
	b.StopTimer()
	victim.restart()
	converge()
	eventually(b, func() bool { return len(m.Stats().HeldDown) == 0 }, time.Minute, 10*time.Millisecond)
	b.StartTimer()
}

// report reports p50 and p99 over every DA, the slowest run's last DA and
// the slowest commit.
func (r *failoverRuns) report(b *testing.B) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(r.quantile(0.50)), "p50-ms")
	b.ReportMetric(ms(r.quantile(0.99)), "p99-ms")
	seen := slices.Sorted(slices.Values(r.seen))
	b.ReportMetric(ms(seen[int(0.99*float64(len(seen)-1))]), "seen-p99-ms")
	b.ReportMetric(float64(slices.Max(r.last))/float64(time.Millisecond), "all-ms")
	b.ReportMetric(float64(slices.Max(r.commit))/float64(time.Millisecond), "commit-ms")
}

// quantile is the p-quantile of every DA's time so far.
func (r *failoverRuns) quantile(p float64) time.Duration {
	lat := slices.Sorted(slices.Values(r.lat))
	return lat[int(p*float64(len(lat)-1))]
}

// BenchmarkFailoverSpread is BenchmarkFailover on a larger cluster whose
// DAs are spread: VDA_BENCH_DAS DAs (default 10000) over 10 CNs and 10 DNs
// (two VDs and two controllers each), one CN killed; measured are the DAs
// whose primary was on it (about a tenth), each until its export on its
// other controller's CN is ANA optimized. Same metrics as BenchmarkFailover,
// and the set-up's create-s and settle-s.
//
// The agents and the monitors are in this process; the nodes' fake SPDKs
// are, in nodes=procs, each a vda-fakespdk process of its own (built by
// the benchmark), in nodes=inproc in this process too. A settled DA holds
// 6 open files: both ends of its three fabric connections (the primary
// CN's to its two VDs, the secondary CN's to the primary's export). In
// one process 10,000 DAs need a limit of about 61,000 (ulimit -n); with
// 20,000, 3,000 DAs is the most, and nodes=inproc skips a size that does
// not fit. Spread over 20 processes, 10,000 DAs need about 4,000 files in
// the busiest CN's (docs/BENCHMARKS.md).
//
//	VDA_BENCH_DAS=10000 go test -run '^$' -bench 'BenchmarkFailoverSpread/.*/.*/nodes=procs' -benchtime 1x -timeout 60m ./monitor
func BenchmarkFailoverSpread(b *testing.B) {
	n := benchDAs(b, 10000)
	b.Run(fmt.Sprintf("das=%d/cns=10/nodes=procs", n), func(b *testing.B) {
		benchFailoverSpread(b, n, 10, buildFakeSPDK(b, b.TempDir()))
	})
	b.Run(fmt.Sprintf("das=%d/cns=10/nodes=inproc", n), func(b *testing.B) {
		var lim syscall.Rlimit
		require.NoError(b, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
		if need := uint64(6*n + 1000); lim.Cur < need {
			b.Skipf("%d DAs in one process need about %d open files, the limit is %d (ulimit -n): run nodes=procs", n, need, lim.Cur)
		}
		if 2*n/10+1 > 1024 {
			b.Skipf("%d DAs over 10 nodes need %d NVMe-oF subsystems per node, more than SPDK's default of 1,024, "+
				"which the in-process nodes (agenttest) keep: run nodes=procs", n, 2*n/10+1)
		}
		benchFailoverSpread(b, n, 10, "")
	})
}

// benchFailoverSpread runs the benchmark on n DAs over cns CNs and as
// many DNs, their SPDKs processes of the vda-fakespdk at bin, or in this
// process if bin is "".
func benchFailoverSpread(b *testing.B, n, cns int, bin string) {
	setupProf := startSetupProfile(b)
	t0 := time.Now()
	s := newMemStore(b)
	// A node holds 2n/cns VDs or controllers, each an NVMe-oF subsystem,
	// and SPDK holds 1,024 by default (the discovery subsystem included):
	// a larger node is set up for more, as on real SPDK.
	var maxSubsystems uint32
	if need := 2*n/cns + 1; need > 1024 {
		maxSubsystems = uint32(need + 64)
	}
	rc := newSpreadCluster(b, s, cns, cns, uint64(2*n/cns+1)*32<<20, bin, maxSubsystems) // 16 MiB VDs, within the malloc limit at 10,000
	ctx := context.Background()
	cfg := DefaultConfig(s, "bench")
	cfg.Insecure = true
	cfg.Failover = failover.DefaultConfig()
	cfg.Logger = testConfig(s, "bench").Logger
	// The set-up's monitor fails no node for silence, nor cancels a long
	// first Sync: with 10,000 DAs (2,000 VDs per DN, 2,000 controllers per
	// CN) the 20 fake SPDKs share this machine's two cores (and, in-process,
	// this process), a node's Health probe waits behind its Sync's RPCs for
	// longer than the default SlowTimeout (5 s),
	// and a monitor of the default configuration fails nodes over for
	// silence faster than they settle (all at once: 21 silent failures and
	// 11,522 failovers in the first 67 s; in batches of 1,000 settled one by
	// one: the first at 3,000 DAs). The failover is measured by a monitor
	// of the default configuration that takes over once the cluster settled.
	setupCfg := cfg
	setupCfg.Failover.SlowTimeout, setupCfg.Failover.HoldDown = time.Hour, 0
	setupCfg.HealthTimeout, setupCfg.SyncTimeout = 10*time.Minute, time.Hour
	setupM, stopSetup := startMonitor(b, setupCfg)
	m := setupM
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
	benchLog(b, "set-up: %d DNs, %d CNs and the monitor started in %v (load %s)", cns, cns,
		time.Since(t0).Round(time.Millisecond), loadAvg())
	// VDA_BENCH_BATCH creates the DAs in batches, each settled before the
	// next; by default all at once.
	batch := n
	if v := os.Getenv("VDA_BENCH_BATCH"); v != "" {
		var err error
		batch, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	require.Positive(b, batch, "VDA_BENCH_BATCH")
	var created time.Duration
	settleStart := time.Now()
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		t1 := time.Now()
		require.NoError(b, createSpreadDAs(ctx, rc.c, lo, hi))
		created += time.Since(t1)
		t2 := time.Now()
		lastLog, lastHealthy := t2, -1
		eventually(b, func() bool {
			das := all()
			healthy := 0
			for _, da := range das {
				if da.Initialized && da.Status.Health == vda.HealthHealthy {
					healthy++
				}
			}
			if done := healthy == len(das); done || time.Since(lastLog) >= 30*time.Second {
				why, full := unsettled(das)
				// A target out of subsystems stays so: fail rather than wait
				// for an hour (a fake that ignores nvmf_set_max_subsystems).
				require.False(b, healthy == lastHealthy && full,
					"no progress in %v and a node out of NVMe-oF subsystems (SPDK's default is 1,024; does the fake honour "+
						"nvmf_set_max_subsystems, set to %d?)%s", time.Since(lastLog).Round(time.Second), maxSubsystems, why)
				lastLog, lastHealthy = time.Now(), healthy
				st := m.Stats()
				what := "settling"
				if done {
					what = "settled"
				}
				benchLog(b, "set-up: DAs %d-%d created in %v, %s in %v: %d/%d healthy; nodes failed %d refused, %d silent; "+
					"failovers %d; %s open files (load %s)%s", lo, hi-1, t2.Sub(t1).Round(time.Millisecond),
					what, time.Since(t2).Round(time.Second), healthy, len(das),
					st.NodesFailedRefused, st.NodesFailedSilent, st.Failovers, rc.openFiles(), loadAvg(), why)
			}
			return healthy == len(das)
		}, 60*time.Minute, time.Duration(10+hi/2)*time.Millisecond) // a poll lists every DA (~15 µs each): seldom, not to load the set-up it times
	}
	settled := time.Since(settleStart)
	setupFailed := setupM.Stats().NodesFailedRefused + setupM.Stats().NodesFailedSilent
	setupProf()
	stopSetup()
	t3 := time.Now()
	rev0, err := s.Revision(ctx)
	require.NoError(b, err)
	m, _ = startMonitor(b, cfg)
	// The new monitor's first Sync to each node (a no-op resync) is done
	// before the kill: the failover is not measured beside a cold start.
	eventually(b, func() bool {
		for _, n := range rc.nodes() {
			h, err := n.health(ctx)
			if err != nil || h.GetGeneration() <= rev0 {
				return false
			}
		}
		return true
	}, 10*time.Minute, 50*time.Millisecond)
	converge()
	eventually(b, func() bool { return len(m.Stats().HeldDown) == 0 }, time.Minute, 10*time.Millisecond)
	benchLog(b, "set-up: the default monitor took over in %v: nodes failed %d refused, %d silent (load %s)",
		time.Since(t3).Round(time.Millisecond), m.Stats().NodesFailedRefused, m.Stats().NodesFailedSilent, loadAvg())
	var runs failoverRuns
	moved := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		das := all()
		p0, ok := das[0].Primary()
		require.True(b, ok)
		victim := rc.node(p0.CNName)
		var affected []string
		survivor := map[string]failoverNode{}
		for _, da := range das {
			p, _ := da.Primary()
			if p.CNName != victim.name() {
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
		cpu0 := rc.cpu()
		runs.measure(b, rc.da, m, victim, func(name string) failoverNode { return survivor[name] }, affected, das[0].Epoch, converge,
			i == b.N-1)
		cpu := ""
		if i == b.N-1 { // the failover alone: no restart and reconvergence after it
			cpu = "; CPU in it: " + rc.cpuSince(cpu0)
		}
		st := m.Stats()
		benchLog(b, "failover %d: %d DAs moved, p50 %v, p99 %v, all %v, commit %v; nodes failed %d refused, %d silent; "+
			"failovers %d%s (load %s)", i, len(affected), runs.quantile(0.50), runs.quantile(0.99), slices.Max(runs.last),
			slices.Max(runs.commit), st.NodesFailedRefused, st.NodesFailedSilent, st.Failovers, cpu, loadAvg())
	}
	b.StopTimer()
	runs.report(b)
	b.ReportMetric(float64(moved), "moved-das")
	b.ReportMetric(settled.Seconds(), "settle-s")
	b.ReportMetric(created.Seconds(), "create-s")
	b.ReportMetric(float64(setupFailed), "setup-failed-nodes")
	b.ReportMetric(0, "ns/op")
}

// unsettled says why the DAs that are not yet initialized and healthy are
// not, for a set-up's progress log: how many of each, and the most common
// status messages of their parts ("" if all are); and whether a node is
// out of NVMe-oF subsystems.
func unsettled(das []vda.DiskArray) (why string, full bool) {
	uninit, health, msgs := 0, map[vda.Health]int{}, map[string]int{}
	for _, da := range das {
		if da.Initialized && da.Status.Health == vda.HealthHealthy {
			continue
		}
		if !da.Initialized {
			uninit++
		}
		health[da.Status.Health]++
		for _, p := range da.Status.Parts {
			if p.Health != vda.HealthHealthy {
				full = full || strings.Contains(p.ErrorMsg, "Unable to create subsystem")
				msg := idsRE.ReplaceAllString(p.ErrorMsg, "*")
				if len(msg) > 160 {
					msg = msg[:160]
				}
				msgs[fmt.Sprintf("%s: %s", p.Health, msg)]++
			}
		}
	}
	if len(health) == 0 {
		return "", false
	}
	top := slices.SortedFunc(maps.Keys(msgs), func(a, b string) int { return msgs[b] - msgs[a] })
	var out strings.Builder
	fmt.Fprintf(&out, "; not settled: %d uninitialized, by health %v", uninit, health)
	for _, m := range top[:min(3, len(top))] {
		fmt.Fprintf(&out, "; %d parts %q", msgs[m], m)
	}
	return out.String(), full
}

// idsRE matches what differs between the otherwise equal messages of
// different objects: IDs, DA names, ports.
var idsRE = regexp.MustCompile(`[0-9a-f]{32}|[0-9a-f]{14,}|da[0-9]{5}|[0-9]+\b`)

// createSpreadDAs creates DAs lo..hi-1 (da00000...) of two VDs and two
// controllers, each with an exporter exp0, through the Go API, 8 at once.
func createSpreadDAs(ctx context.Context, c *vda.Cluster, lo, hi int) error {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo + w; i < hi; i += workers {
				name := fmt.Sprintf("da%05d", i)
				if _, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: name, CntlrCount: 2, SizeBytes: 32 << 20,
					Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}}); err != nil {
					errs <- err
					return
				}
				if _, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: name, Name: "exp0", InitiatorNQN: initiator}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// startSetupProfile starts the CPU profile of VDA_BENCH_SETUPPROFILE (the
// set-up of a benchmark, until its cluster settled) and returns its stop.
func startSetupProfile(b *testing.B) func() {
	path := os.Getenv("VDA_BENCH_SETUPPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%s", path, strings.ReplaceAll(b.Name(), "/", "_")))
	require.NoError(b, err)
	require.NoError(b, pprof.StartCPUProfile(f))
	return func() {
		pprof.StopCPUProfile()
		require.NoError(b, f.Close())
	}
}

// benchLog logs to the benchmark and, as it goes, to stderr: a long
// set-up shows its progress while it runs (b.Logf prints only at the end).
func benchLog(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, "%s %s: %s\n", time.Now().Format("15:04:05"), b.Name(), fmt.Sprintf(format, args...))
}

// openFDs is how many files this process has open ("?" where /proc has
// none): every fabric connection between the fake SPDKs has both its ends
// here, and the process's limit (ulimit -n) bounds the cluster's size.
func openFDs() string {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return "?"
	}
	return strconv.Itoa(len(fds))
}

// loadAvg is the machine's load average (1, 5, 15 min), for the logs of
// the benchmarks on this shared machine; "?" where /proc has none.
func loadAvg() string {
	v, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(v))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
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
// time from start to when the export became optimized (promotedAt) and to
// when the poll saw it; and when the poll saw the first DA's epoch move
// past epoch (the failover commit).
func waitPromotedOn(b *testing.B, da func(name string) vda.DiskArray, survivor func(name string) failoverNode,
	names []string, epoch int64, start time.Time) (out, seen []time.Duration, committed time.Duration) {
	pending := slices.Clone(names)
	deadline := start.Add(10 * time.Minute)
	for len(pending) > 0 {
		require.True(b, time.Now().Before(deadline), "%d DAs never promoted", len(pending))
		if committed == 0 && da(names[0]).Epoch > epoch {
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
				at, ok := survivor(name).promotedAt(nqn)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					out = append(out, at.Sub(start))
					seen = append(seen, time.Since(start))
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
	return out, seen, committed
}
