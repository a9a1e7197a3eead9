package portalmetrics

import (
	"github.com/vda-io/vda/metrics"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/vda-io/vda/portal"
)

// Metrics is the portal's metrics: requests by method and code, and their
// latency by method.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var _ portal.Metrics = (*Metrics)(nil)

// New registers the portal's metrics on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	p := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "portal", Name: "requests_total",
			Help: "Portal gRPC calls by full method name and status code."}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "portal",
			Name: "request_duration_seconds", Help: "Latency of portal gRPC calls by full method name.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"method"}),
	}
	return p, metrics.Register(reg, p.requests, p.duration)
}

// ObserveRequest implements portal.Metrics.
func (p *Metrics) ObserveRequest(method string, code codes.Code, d time.Duration) {
	if p == nil {
		return
	}
	p.requests.WithLabelValues(method, code.String()).Inc()
	p.duration.WithLabelValues(method).Observe(d.Seconds())
}
