package devcluster_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/metrics"
)

// scrape GETs url and parses the Prometheus text exposition.
func scrape(t require.TestingT, url string) map[string]*dto.MetricFamily {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// sum adds the values (counters, gauges; sample counts of histograms) of
// the family's series whose labels include want.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var s float64
	mf := mfs[name]
	if mf == nil {
		return 0
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			s += m.GetCounter().GetValue()
		case m.Gauge != nil:
			s += m.GetGauge().GetValue()
		case m.Histogram != nil:
			s += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return s
}

// TestMetricsScrape runs a cluster with metrics, creates a disk array
// through the portal, kills its primary's node, and finds the portal's,
// the monitor's (the failover among them) and the agents' metrics in a
// scrape.
func TestMetricsScrape(t *testing.T) {
	reg := metrics.NewRegistry()
	c, err := devcluster.New(devcluster.Config{DataDir: t.TempDir(), AnyPorts: true, Register: true, PDSizeBytes: 256 << 20,
		Failover: failover.Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: time.Second,
			SlowTimeout: 5 * time.Second, HoldDown: 10 * time.Second}, Metrics: reg})
	require.NoError(t, err)
	srv := httptest.NewServer(metrics.Handler(reg, c.ReadyCheck))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "not ready before it runs")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := c.Start(ctx)
	require.NoError(t, err, "cluster did not start")
	t.Cleanup(func() { require.NoError(t, stop()) })
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		resp, err := http.Get(srv.URL + "/readyz")
		require.NoError(ct, err)
		_ = resp.Body.Close()
		require.Equal(ct, http.StatusOK, resp.StatusCode)
	}, time.Minute, 20*time.Millisecond)

	tc, err := c.AdminTLS().ClientTLS()
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.PortalAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = pb.NewPortalClient(conn).CreateDa(ctx, &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 2, DaSize: 32 << 20,
		DaConf: `{"stripe_count":2,"stripe_size_kb":64}`})
	require.NoError(t, err)
	api := c.API()
	var primaryCN, primaryID string
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		da, err := api.GetDiskArray(ctx, "da0")
		require.NoError(ct, err)
		for _, cn := range da.Cntlrs {
			require.Equal(ct, "healthy", string(da.Status.Part(cn.ID).Health), "controller %d", cn.Idx)
		}
		p, ok := da.Primary()
		require.True(ct, ok)
		primaryCN, primaryID = p.CNName, p.ID
	}, 2*time.Minute, 20*time.Millisecond)

	n := c.Node(primaryCN)
	require.NotNil(t, n)
	n.Kill()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		da, err := api.GetDiskArray(ctx, "da0")
		require.NoError(ct, err)
		require.NotEqual(ct, primaryID, da.PrimaryCntlrID, "failed over")
	}, 2*time.Minute, 20*time.Millisecond)

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		mfs := scrape(ct, srv.URL+"/metrics")
		assert.Equal(ct, 1.0, sum(mfs, "vda_portal_requests_total", map[string]string{"method": pb.Portal_CreateDa_FullMethodName, "code": "OK"}))
		assert.Equal(ct, 1.0, sum(mfs, "vda_portal_request_duration_seconds", map[string]string{"method": pb.Portal_CreateDa_FullMethodName}))
		assert.Equal(ct, 1.0, sum(mfs, "vda_monitor_failovers_total", nil))
		assert.Equal(ct, 1.0, sum(mfs, "vda_monitor_failover_disk_arrays_total", nil))
		assert.Equal(ct, 1.0, sum(mfs, "vda_monitor_failover_duration_seconds", nil), "the failover is in the histogram")
		assert.Positive(ct, sum(mfs, "vda_monitor_node_health_transitions_total", map[string]string{"to": "failed"}))
		assert.Positive(ct, sum(mfs, "vda_monitor_pushes_total", map[string]string{"result": "ok"}))
		assert.Positive(ct, sum(mfs, "vda_monitor_push_duration_seconds", nil))
		assert.Positive(ct, sum(mfs, "vda_monitor_health_probes_total", map[string]string{"node": primaryCN}))
		assert.Positive(ct, sum(mfs, "vda_monitor_health_probe_misses_total", map[string]string{"node": primaryCN}))
		assert.Equal(ct, 1.0, sum(mfs, "vda_cluster_disk_arrays", nil))
		assert.Equal(ct, 4.0, sum(mfs, "vda_cluster_nodes", nil))
		assert.Len(ct, mfs["vda_cluster_pd_free_bytes"].GetMetric(), 2)
		assert.Positive(ct, sum(mfs, "vda_cluster_pd_used_bytes", nil), "the DA's VDs use PD capacity")
		for _, node := range []string{"dn0", "dn1", "cn0", "cn1"} {
			assert.Positive(ct, sum(mfs, "vda_agent_syncs_total", map[string]string{"node": node}), node)
			assert.Positive(ct, sum(mfs, "vda_agent_sync_spdk_rpcs", map[string]string{"node": node}), node)
		}
		assert.Positive(ct, sum(mfs, "vda_agent_spdk_rpc_duration_seconds", map[string]string{"node": "dn0", "method": "bdev_lvol_create"}))
		assert.Equal(ct, 1.0, sum(mfs, "vda_build_info", nil))
		assert.Positive(ct, sum(mfs, "vda_store_txn_duration_seconds", map[string]string{"result": "committed"}), "the store's transactions")
		assert.Positive(ct, sum(mfs, "vda_store_read_duration_seconds", nil), "the store's reads")
	}, time.Minute, 50*time.Millisecond)
}
