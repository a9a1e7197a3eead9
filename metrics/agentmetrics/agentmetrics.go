package agentmetrics

import (
	"context"
	"errors"
	"github.com/vda-io/vda/metrics"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/spdk"
)

// Metrics is a node agent's metrics: Syncs (count, duration, SPDK calls per
// Sync) and SPDK calls (latency by method, errors by method and code).
type Metrics struct {
	syncs      prometheus.Counter
	syncTime   prometheus.Histogram
	syncRPCs   prometheus.Histogram
	rpcTime    *prometheus.HistogramVec
	rpcErrors  *prometheus.CounterVec
	syncErrors prometheus.Counter
}

var _ agent.Metrics = (*Metrics)(nil)

// New registers an agent's metrics on reg. Several agents in one
// process each need their own labels (prometheus.WrapRegistererWith).
func New(reg prometheus.Registerer) (*Metrics, error) {
	const sub = "agent"
	a := &Metrics{
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "syncs_total",
			Help: "Syncs (desired state pushed by a monitor) the agent applied."}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "sync_errors_total",
			Help: "Syncs refused because SPDK did not answer."}),
		syncTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "sync_duration_seconds",
			Help: "Time to apply one Sync.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		syncRPCs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "sync_spdk_rpcs",
			Help: "SPDK JSON-RPC calls one Sync issued.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		rpcTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "spdk_rpc_duration_seconds",
			Help: "Latency of SPDK JSON-RPC calls by method.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"method"}),
		rpcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "spdk_rpc_errors_total",
			Help: "Failed SPDK JSON-RPC calls by method and code: SPDK's JSON-RPC error code, or transport, timeout or canceled."},
			[]string{"method", "code"}),
	}
	return a, metrics.Register(reg, a.syncs, a.syncErrors, a.syncTime, a.syncRPCs, a.rpcTime, a.rpcErrors)
}

// Synced implements agent.Metrics.
func (a *Metrics) Synced(d time.Duration, rpcs int, err error) {
	if a == nil {
		return
	}
	if err != nil {
		a.syncErrors.Inc()
		return
	}
	a.syncs.Inc()
	a.syncTime.Observe(d.Seconds())
	a.syncRPCs.Observe(float64(rpcs))
}

// SPDKCall implements agent.Metrics.
func (a *Metrics) SPDKCall(method string, d time.Duration, err error) {
	if a == nil {
		return
	}
	a.rpcTime.WithLabelValues(method).Observe(d.Seconds())
	if err != nil {
		a.rpcErrors.WithLabelValues(method, errorCode(err)).Inc()
	}
}

// errorCode is the code label of a failed SPDK call.
func errorCode(err error) string {
	var se *spdk.Error
	switch {
	case errors.As(err, &se):
		return strconv.Itoa(se.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "transport"
	}
}
