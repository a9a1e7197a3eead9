package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/metrics"
	"github.com/vda-io/vda/metrics/agentmetrics"
	"github.com/vda-io/vda/metrics/monitormetrics"
	"github.com/vda-io/vda/metrics/portalmetrics"
	"github.com/vda-io/vda/monitor"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/spdk"
)

var (
	_ portal.Metrics  = (*portalmetrics.Metrics)(nil)
	_ monitor.Metrics = (*monitormetrics.Metrics)(nil)
	_ agent.Metrics   = (*agentmetrics.Metrics)(nil)
)

// all registers every component's metrics on a fresh registry and gives
// each of them a value, so every family is exported.
func all(t *testing.T) (*prometheus.Registry, *portalmetrics.Metrics, *monitormetrics.Metrics, *agentmetrics.Metrics) {
	t.Helper()
	reg := metrics.NewRegistry()
	p, err := portalmetrics.New(reg)
	require.NoError(t, err)
	m, err := monitormetrics.New(reg)
	require.NoError(t, err)
	a, err := agentmetrics.New(prometheus.WrapRegistererWith(prometheus.Labels{"node": "dn0"}, reg))
	require.NoError(t, err)
	p.ObserveRequest("/vda.portal.Portal/CreateDa", codes.OK, time.Millisecond)
	p.ObserveRequest("/vda.portal.Portal/CreateDa", codes.AlreadyExists, time.Millisecond)
	m.Pushed("dn0", 3*time.Millisecond, nil)
	m.Pushed("dn0", time.Second, errors.New("refused"))
	m.Probed("cn0", "")
	m.Probed("cn0", "refused")
	m.NodeTransition("id-cn0", failover.Healthy, failover.Failed)
	m.FailedOver("id-cn0", 3)
	m.FailedOver("id-cn9", 1) // failed before this monitor saw it: 0
	m.Cluster(monitor.ClusterStats{OwnedNodes: 2, Nodes: 4, DAs: map[string]int{"healthy": 2, "degraded": 1},
		PDs: []monitor.PDStats{{DN: "dn0", PD: "pd0", Location: "rack1", TotalBytes: 100, FreeBytes: 40}}})
	a.Synced(20*time.Millisecond, 12, nil)
	a.Synced(time.Millisecond, 0, errors.New("x"))
	a.SPDKCall("bdev_get_bdevs", time.Millisecond, nil)
	a.SPDKCall("bdev_lvol_create", time.Millisecond, &spdk.Error{Method: "bdev_lvol_create", Code: -17, Message: "File exists"})
	a.SPDKCall("bdev_lvol_create", time.Millisecond, fmt.Errorf("x: %w", context.DeadlineExceeded))
	return reg, p, m, a
}

func TestNamesFollowConventions(t *testing.T) {
	reg, _, _, _ := all(t)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if strings.HasPrefix(mf.GetName(), "go_") || strings.HasPrefix(mf.GetName(), "process_") {
			continue
		}
		require.True(t, strings.HasPrefix(mf.GetName(), "vda_"), mf.GetName())
	}
	for _, n := range []string{
		"vda_build_info",
		"vda_portal_requests_total", "vda_portal_request_duration_seconds",
		"vda_monitor_pushes_total", "vda_monitor_push_duration_seconds", "vda_monitor_health_probes_total",
		"vda_monitor_health_probe_misses_total", "vda_monitor_node_health_transitions_total", "vda_monitor_failovers_total",
		"vda_monitor_failover_disk_arrays_total", "vda_monitor_failover_duration_seconds", "vda_monitor_owned_nodes",
		"vda_cluster_nodes", "vda_cluster_disk_arrays", "vda_cluster_pd_used_bytes", "vda_cluster_pd_free_bytes",
		"vda_agent_syncs_total", "vda_agent_sync_errors_total", "vda_agent_sync_duration_seconds", "vda_agent_sync_spdk_rpcs",
		"vda_agent_spdk_rpc_duration_seconds", "vda_agent_spdk_rpc_errors_total",
	} {
		require.True(t, names[n], "%s is not exported", n)
	}
}

func TestValues(t *testing.T) {
	reg, _, _, _ := all(t)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vda_portal_requests_total Portal gRPC calls by full method name and status code.
# TYPE vda_portal_requests_total counter
vda_portal_requests_total{code="AlreadyExists",method="/vda.portal.Portal/CreateDa"} 1
vda_portal_requests_total{code="OK",method="/vda.portal.Portal/CreateDa"} 1
# HELP vda_monitor_failovers_total Failovers committed: a failed node's disk arrays moved to new primaries (one per node and commit).
# TYPE vda_monitor_failovers_total counter
vda_monitor_failovers_total 2
# HELP vda_monitor_failover_disk_arrays_total Disk arrays moved to a new primary by failovers.
# TYPE vda_monitor_failover_disk_arrays_total counter
vda_monitor_failover_disk_arrays_total 4
# HELP vda_monitor_health_probe_misses_total Health probes without a good answer, by node name and kind (refused: nothing there; silent: no answer in time).
# TYPE vda_monitor_health_probe_misses_total counter
vda_monitor_health_probe_misses_total{kind="refused",node="cn0"} 1
# HELP vda_cluster_disk_arrays Disk arrays by health (healthy, degraded, failed, unknown).
# TYPE vda_cluster_disk_arrays gauge
vda_cluster_disk_arrays{health="degraded"} 1
vda_cluster_disk_arrays{health="healthy"} 2
# HELP vda_cluster_pd_used_bytes Bytes of a physical disk's capacity allocated to virtual disks.
# TYPE vda_cluster_pd_used_bytes gauge
vda_cluster_pd_used_bytes{dn="dn0",location="rack1",pd="pd0"} 60
# HELP vda_agent_spdk_rpc_errors_total Failed SPDK JSON-RPC calls by method and code: SPDK's JSON-RPC error code, or transport, timeout or canceled.
# TYPE vda_agent_spdk_rpc_errors_total counter
vda_agent_spdk_rpc_errors_total{code="-17",method="bdev_lvol_create",node="dn0"} 1
vda_agent_spdk_rpc_errors_total{code="timeout",method="bdev_lvol_create",node="dn0"} 1
`), "vda_portal_requests_total", "vda_monitor_failovers_total", "vda_monitor_failover_disk_arrays_total",
		"vda_monitor_health_probe_misses_total", "vda_cluster_disk_arrays", "vda_cluster_pd_used_bytes",
		"vda_agent_spdk_rpc_errors_total"))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		switch mf.GetName() {
		case "vda_monitor_failover_duration_seconds":
			require.EqualValues(t, 2, mf.GetMetric()[0].GetHistogram().GetSampleCount(), "every failover")
		case "vda_agent_sync_spdk_rpcs":
			require.EqualValues(t, 12, mf.GetMetric()[0].GetHistogram().GetSampleSum())
		}
	}
}

func TestRegisterTwiceFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := portalmetrics.New(reg)
	require.NoError(t, err)
	_, err = portalmetrics.New(reg)
	require.Error(t, err, "a second portal on one registry needs its own labels")
}

func TestHandler(t *testing.T) {
	reg, _, _, _ := all(t)
	var notReady error = errors.New("store unreachable")
	srv := httptest.NewServer(metrics.Handler(reg, func(context.Context) error { return notReady }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "store unreachable")
	notReady = nil
	code, _ = get("/readyz")
	require.Equal(t, http.StatusOK, code)
	code, body = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `vda_portal_requests_total{code="OK",method="/vda.portal.Portal/CreateDa"} 1`)
	require.Contains(t, body, "vda_build_info{")
	code, _ = get("/nosuch")
	require.Equal(t, http.StatusNotFound, code)
}

func TestStart(t *testing.T) {
	reg := metrics.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop, err := metrics.Start(ctx, "127.0.0.1:0", metrics.Handler(reg, nil), func(err error) { t.Errorf("server failed: %v", err) })
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr.String() + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	stop()
	_, err = http.Get("http://" + addr.String() + "/healthz")
	require.Error(t, err, "stopped")
	_, _, err = metrics.Start(ctx, "127.0.0.1:notaport", metrics.Handler(reg, nil), nil)
	require.Error(t, err)
}

// A nil *Portal, *Monitor or *Agent in a Config's Metrics field (a typed
// nil in the interface) records nothing instead of panicking.
func TestNilMetricsAreSafe(t *testing.T) {
	var p *portalmetrics.Metrics
	var m *monitormetrics.Metrics
	var a *agentmetrics.Metrics
	var pm portal.Metrics = p
	var mm monitor.Metrics = m
	var am agent.Metrics = a
	require.NotPanics(t, func() {
		pm.ObserveRequest("/vda.Portal/GetDa", codes.OK, time.Millisecond)
		mm.Pushed("cn0", time.Millisecond, nil)
		mm.Probed("cn0", "silent")
		mm.NodeTransition("id", failover.Healthy, failover.Failed)
		mm.FailedOver("id", 3)
		mm.Cluster(monitor.ClusterStats{})
		am.Synced(time.Millisecond, 4, nil)
		am.SPDKCall("bdev_get_bdevs", time.Millisecond, errors.New("x"))
	})
}
