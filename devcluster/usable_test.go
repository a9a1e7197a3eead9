package devcluster_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/metrics"
)

// Create to usable (issue 18): from the DA create and the exporter create
// to the exporter healthy on every controller (primary and secondaries).

// usable tracks DAs from their create to their exporter healthy on every
// controller, through one watch over all exporters.
type usable struct {
	api *vda.Cluster

	mu      sync.Mutex
	pending map[string]*usableDA // by exporter key
	lat     []time.Duration      // create to usable, per usable DA
	calls   []time.Duration      // the two create calls, per DA
	errs    []error
	last    time.Time // when the last DA became usable
	all     chan struct{}
	want    int // close all once this many are usable
}

type usableDA struct {
	da, exp  string
	issued   time.Time // when the create was due (open loop)
	checking bool      // a read of the exporter is under way
	again    bool      // a change arrived during that read
}

// watchUsable starts watching exporters; it ends with ctx.
func watchUsable(ctx context.Context, tb testing.TB, api *vda.Cluster) *usable {
	changes, _, err := api.Watch(ctx, vda.PrefixExp)
	require.NoError(tb, err)
	u := &usable{api: api, pending: map[string]*usableDA{}, all: make(chan struct{})}
	go func() {
		for ch := range changes {
			// The exporter's health as GetExporter reads it is its stored
			// status (made no healthier by its DA's epoch): a change of
			// the spec alone cannot make it usable, so only status
			// changes are read (and the read after the creates).
			if ch.Status || ch.Deleted {
				u.changed(ctx, ch.Key)
			}
		}
	}()
	return u
}

// changed reads the exporter at key (once at a time per exporter, again
// if it changed meanwhile) and records it usable when it is healthy.
func (u *usable) changed(ctx context.Context, key string) {
	u.mu.Lock()
	d := u.pending[key]
	if d == nil {
		u.mu.Unlock()
		return
	}
	if d.checking {
		d.again = true
		u.mu.Unlock()
		return
	}
	d.checking = true
	u.mu.Unlock()
	go func() {
		for {
			exp, err := u.api.GetExporter(ctx, d.da, d.exp)
			now := time.Now()
			u.mu.Lock()
			if vda.Healthy(exp, err) {
				if _, ok := u.pending[key]; ok {
					delete(u.pending, key)
					u.lat = append(u.lat, now.Sub(d.issued))
					u.last = now
					if len(u.lat) == u.want {
						close(u.all)
					}
				}
				u.mu.Unlock()
				return
			}
			if !d.again || ctx.Err() != nil {
				d.checking = false
				u.mu.Unlock()
				return
			}
			d.again = false
			u.mu.Unlock()
		}
	}()
}

// create makes DA name with 2 VDs and 2 controllers and its exporter,
// timing it from issued.
func (u *usable) create(ctx context.Context, name string, issued time.Time) {
	key := vda.KeyExp(name, "exp0")
	u.mu.Lock()
	u.pending[key] = &usableDA{da: name, exp: "exp0", issued: issued}
	u.mu.Unlock()
	_, err := u.api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: name, CntlrCount: 2, SizeBytes: 16 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	if err == nil {
		_, err = u.api.CreateExporter(ctx, vda.ExporterSpec{DAName: name, Name: "exp0", InitiatorNQN: hostNQN})
	}
	u.mu.Lock()
	if err != nil {
		delete(u.pending, key)
		u.errs = append(u.errs, fmt.Errorf("create %s: %w", name, err))
	} else {
		u.calls = append(u.calls, time.Since(issued))
	}
	u.mu.Unlock()
	if err == nil {
		u.changed(ctx, key) // in case it is healthy already
	}
}

// expect makes all close once n DAs are usable.
func (u *usable) expect(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.want = n
	if len(u.lat) >= n {
		close(u.all)
	}
}

// startCluster runs a cluster of dns disk nodes (one aio PD of pdBytes
// each) and cns controller nodes until tb ends, with the monitor's and
// failure detector's defaults.
func startCluster(tb testing.TB, storeURI string, dns, cns int, pdBytes uint64) *devcluster.Cluster {
	tb.Helper()
	return startClusterWith(tb, storeURI, dns, cns, pdBytes, nil)
}

// startClusterWith is startCluster with the components' metrics on reg
// (none if nil).
func startClusterWith(tb testing.TB, storeURI string, dns, cns int, pdBytes uint64, reg *prometheus.Registry) *devcluster.Cluster {
	tb.Helper()
	cfg := devcluster.Config{DataDir: tb.TempDir(), StoreURI: storeURI, AnyPorts: true, Register: true,
		DNs: dns, CNs: cns, PDSizeBytes: pdBytes, Logger: usableLogger(tb)}
	if reg != nil {
		cfg.Metrics = reg
	}
	c, err := devcluster.New(cfg)
	require.NoError(tb, err)
	stop, err := c.Start(context.Background())
	require.NoError(tb, err, "cluster did not start")
	tb.Cleanup(func() { require.NoError(tb, stop()) })
	return c
}

// TestCreateToUsable creates a handful of DAs with an exporter each at
// once and requires every exporter to become healthy on both controllers.
func TestCreateToUsable(t *testing.T) {
	c := startCluster(t, "", 3, 2, 1<<30)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang, not a budget
	defer cancel()
	u := watchUsable(ctx, t, c.API())
	const n = 6
	u.expect(n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { u.create(ctx, fmt.Sprintf("da%d", i), time.Now()) })
	}
	wg.Wait()
	require.Empty(t, u.errs)
	select {
	case <-u.all:
	case <-ctx.Done():
		u.mu.Lock()
		defer u.mu.Unlock()
		t.Fatalf("%d of %d DAs usable; pending: %v", len(u.lat), n, slices.Sorted(maps.Keys(u.pending)))
	}
	for i := range n {
		exp, err := c.API().GetExporter(ctx, fmt.Sprintf("da%d", i), "exp0")
		require.NoError(t, err)
		require.Len(t, exp.Ports, 2)
		for _, p := range exp.Ports {
			require.Equal(t, vda.HealthHealthy, exp.Status.Part(p.ID).Health, "da%d controller %d", i, p.CntlrIdx)
			require.NotZero(t, p.CNListener)
		}
	}
}

// usableLogger logs every component at debug level to the file named by
// VDA_USABLE_LOG (where a run's time goes: each push's duration, what was
// not ready); nil (silent) when it is unset.
func usableLogger(tb testing.TB) hclog.Logger {
	path := os.Getenv("VDA_USABLE_LOG")
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, f.Close()) })
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: f, TimeFormat: "15:04:05.000000", IncludeLocation: false})
}

// envOr reads a positive number from the environment.
func envOr(tb testing.TB, name string, def float64) float64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(tb, err, name)
	require.Positive(tb, v, name)
	return v
}

// BenchmarkCreateToUsable offers DA creates (2 VDs, 2 controllers, one
// exporter) at a fixed rate, open loop: the i-th is due at i/rate from the
// start whatever happened to the earlier ones, and its latency counts from
// then. It reports the latency from due to the exporter healthy on both
// controllers (p50, p99, max), of the two create calls (p99), the rate
// creates were issued at and the rate DAs became usable over the whole
// run, and the controller nodes' syncs and NVMe-oF attaches per DA and
// failed attaches until the last DA was usable (cnCounts), and the
// process's CPU per DA over the same span (cpu-ms/DA); with
// VDA_USABLE_RPCS=1 it also prints the agents' SPDK RPCs per DA by node
// role and method (rpcCensus). Each iteration adds VDA_USABLE_RATE (100) DAs/s for
// VDA_USABLE_SECONDS (20) to the same cluster: run it with -benchtime 1x.
// The cluster: 4 disk nodes, 3 controller nodes, the monitor's defaults,
// on the dev cluster's embedded etcd (etcd) or its in-memory store
// (memory), which shows what the store costs.
func BenchmarkCreateToUsable(b *testing.B) {
	b.Run("etcd", func(b *testing.B) { benchUsable(b, "") })
	b.Run("memory", func(b *testing.B) { benchUsable(b, "memory://") })
}

func benchUsable(b *testing.B, storeURI string) {
	rate := envOr(b, "VDA_USABLE_RATE", 100)
	secs := envOr(b, "VDA_USABLE_SECONDS", 20)
	n := int(rate * secs)
	reg := metrics.NewRegistry()
	c := startClusterWith(b, storeURI, 4, 3, 64<<30, reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u := watchUsable(ctx, b, c.API())
	st := newStages()
	st.watch(ctx, b, c.API())
	b.ResetTimer()
	for it := range b.N {
		u.mu.Lock()
		u.lat, u.calls, u.all, u.want = nil, nil, make(chan struct{}), 0
		u.mu.Unlock()
		u.expect(n)
		syncs0, attaches0, refused0 := cnCounts(b, reg, c)
		rpcs0 := rpcCensus(b, reg, c)
		cpu0 := processCPU(b)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			name := fmt.Sprintf("da%d-%06d", it, i)
			st.issued(name, due)
			wg.Go(func() { u.create(ctx, name, due) })
		}
		issued := time.Since(start)
		wg.Wait()
		u.mu.Lock()
		errs := u.errs
		u.mu.Unlock()
		require.Empty(b, errs)
		select {
		case <-u.all:
		case <-time.After(10 * time.Minute):
			b.Fatalf("%d of %d DAs usable after 10 minutes", len(u.lat), n)
		}
		cpu := processCPU(b) - cpu0
		u.mu.Lock()
		lat, create, last := slices.Clone(u.lat), slices.Clone(u.calls), u.last
		u.mu.Unlock()
		syncs, attaches, refused := cnCounts(b, reg, c)
		if os.Getenv("VDA_USABLE_RPCS") != "" {
			printCensus(b, rpcs0, rpcCensus(b, reg, c), n)
		}
		st.print(b)
		slices.Sort(lat)
		slices.Sort(create)
		pct := func(d []time.Duration, p int) float64 { return d[(len(d)-1)*p/100].Seconds() * 1000 }
		b.ReportMetric(pct(lat, 50), "p50-ms")
		b.ReportMetric(pct(lat, 99), "p99-ms")
		b.ReportMetric(pct(lat, 100), "max-ms")
		b.ReportMetric(pct(create, 99), "create-p99-ms")
		b.ReportMetric(float64(n)/issued.Seconds(), "offered-DAs/s")
		b.ReportMetric(float64(n)/last.Sub(start).Seconds(), "usable-DAs/s")
		// The whole process's CPU (every component) from the first create
		// to the last DA usable, without the cluster's start.
		b.ReportMetric(cpu.Seconds()*1000/float64(n), "cpu-ms/DA")
		// Until the last DA was usable (the cluster keeps syncing after).
		b.ReportMetric((syncs-syncs0)/float64(n), "cn-syncs/DA")
		b.ReportMetric((attaches-attaches0)/float64(n), "cn-attaches/DA")
		b.ReportMetric(refused-refused0, "cn-attaches-failed")
	}
}

// processCPU returns the user and system CPU time this process used so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rpcCensus counts, by node role and then by SPDK method, the RPCs the
// agents sent so far ("sync" counts their syncs), and under "store" the
// store's transactions by result and reads by operation.
func rpcCensus(tb testing.TB, reg *prometheus.Registry, c *devcluster.Cluster) map[devcluster.Role]map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	require.NoError(tb, err)
	role := map[string]devcluster.Role{}
	for _, n := range c.Nodes() {
		role[n.ShortName()] = n.Role
	}
	out := map[devcluster.Role]map[string]float64{}
	add := func(r devcluster.Role, method string, v float64) {
		if out[r] == nil {
			out[r] = map[string]float64{}
		}
		out[r][method] += v
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if name == "vda_store_txn_duration_seconds" || name == "vda_store_read_duration_seconds" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					add("store", strings.TrimSuffix(strings.TrimPrefix(name, "vda_store_"), "_duration_seconds")+" "+l.GetValue(),
						float64(m.GetHistogram().GetSampleCount()))
				}
			}
			continue
		}
		if name != "vda_agent_spdk_rpc_duration_seconds" && name != "vda_agent_syncs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var node, method string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "node":
					node = l.GetValue()
				case "method":
					method = l.GetValue()
				}
			}
			r, ok := role[node]
			if !ok {
				continue
			}
			if name == "vda_agent_syncs_total" {
				add(r, "sync", m.GetCounter().GetValue())
				continue
			}
			add(r, method, float64(m.GetHistogram().GetSampleCount()))
		}
	}
	return out
}

// printCensus logs, per role, the RPCs per DA between two censuses of a
// run that made n DAs usable (VDA_USABLE_RPCS=1).
func printCensus(b testing.TB, before, after map[devcluster.Role]map[string]float64, n int) {
	var out strings.Builder
	for _, r := range slices.Sorted(maps.Keys(after)) {
		var total float64
		for _, m := range slices.Sorted(maps.Keys(after[r])) {
			d := after[r][m] - before[r][m]
			if m != "sync" && r != "store" {
				total += d
			}
			if d > 0 {
				fmt.Fprintf(&out, "\n%s %-36s %8.2f per DA", r, m, d/float64(n))
			}
		}
		if r != "store" {
			fmt.Fprintf(&out, "\n%s %-36s %8.2f per DA", r, "all RPCs", total/float64(n))
		}
	}
	fmt.Fprintf(os.Stderr, "%s: RPCs per DA by role%s\n", b.Name(), out.String()) // b.Log keeps only the first lines
}

// cnCounts returns what the controller nodes' agents counted so far:
// syncs applied, bdev_nvme_attach_controller calls (a primary's of its
// VDs, a secondary's of its primary's exports) and those that failed (a
// secondary's attach refused because its primary did not export yet).
func cnCounts(tb testing.TB, reg *prometheus.Registry, c *devcluster.Cluster) (syncs, attaches, failed float64) {
	tb.Helper()
	mfs, err := reg.Gather()
	require.NoError(tb, err)
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	const attach = "bdev_nvme_attach_controller"
	for _, n := range c.Nodes() {
		if n.Role != devcluster.RoleCN {
			continue
		}
		node := n.ShortName()
		syncs += sum(byName, "vda_agent_syncs_total", map[string]string{"node": node})
		attaches += sum(byName, "vda_agent_spdk_rpc_duration_seconds", map[string]string{"node": node, "method": attach})
		failed += sum(byName, "vda_agent_spdk_rpc_errors_total", map[string]string{"node": node, "method": attach})
	}
	return syncs, attaches, failed
}
