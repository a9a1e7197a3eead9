package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/vda-io/vda/portal"
)

// Portal is the portal's metrics: requests by method and code, and their
// latency by method.
type Portal struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var _ portal.Metrics = (*Portal)(nil)

// NewPortal registers the portal's metrics on reg.
func NewPortal(reg prometheus.Registerer) (*Portal, error) {
	p := &Portal{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "portal", Name: "requests_total",
			Help: "Portal gRPC calls by full method name and status code."}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "portal",
			Name: "request_duration_seconds", Help: "Latency of portal gRPC calls by full method name.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"method"}),
	}
	return p, register(reg, p.requests, p.duration)
}

// ObserveRequest implements portal.Metrics.
func (p *Portal) ObserveRequest(method string, code codes.Code, d time.Duration) {
	if p == nil {
		return
	}
	p.requests.WithLabelValues(method, code.String()).Inc()
	p.duration.WithLabelValues(method).Observe(d.Seconds())
}
