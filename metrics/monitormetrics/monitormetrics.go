package monitormetrics

import (
	"github.com/vda-io/vda/metrics"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/monitor"
)

// Metrics is a monitor's metrics: pushes, health probes and their misses
// per node, health transitions, failovers (count, arrays moved, duration
// from the node judged failed to the new primaries committed), and the
// cluster gauges of its last round (nodes, disk arrays by health, PD
// capacity).
type Metrics struct {
	pushes      *prometheus.CounterVec
	pushTime    prometheus.Histogram
	probes      *prometheus.CounterVec
	misses      *prometheus.CounterVec
	transitions *prometheus.CounterVec
	failovers   prometheus.Counter
	moved       prometheus.Counter
	failTime    prometheus.Histogram
	now         func() time.Time

	mu       sync.Mutex
	failedAt map[string]time.Time // by node ID, while failed
	cluster  *monitor.ClusterStats
}

var (
	_ monitor.Metrics      = (*Metrics)(nil)
	_ prometheus.Collector = (*clusterGauges)(nil)
)

// New registers a monitor's metrics on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	const sub = "monitor"
	m := &Metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "pushes_total",
			Help: "Syncs pushed to node agents, by node name and result (ok or error)."}, []string{"node", "result"}),
		pushTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "push_duration_seconds",
			Help: "Latency of one Sync pushed to a node agent.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "health_probes_total",
			Help: "Health probes of node agents, by node name."}, []string{"node"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "health_probe_misses_total",
			Help: "Health probes without a good answer, by node name and kind (refused: nothing there; silent: no answer in time)."},
			[]string{"node", "kind"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "node_health_transitions_total",
			Help: "Node health changes by the state entered (healthy, suspect, failed): flapping nodes raise them."}, []string{"to"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "failovers_total",
			Help: "Failovers committed: a failed node's disk arrays moved to new primaries (one per node and commit)."}),
		moved: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "failover_disk_arrays_total",
			Help: "Disk arrays moved to a new primary by failovers."}),
		failTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "failover_duration_seconds",
			Help:    "Time from a node judged failed to its disk arrays' new primaries committed.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		now:      time.Now,
		failedAt: map[string]time.Time{},
	}
	return m, metrics.Register(reg, m.pushes, m.pushTime, m.probes, m.misses, m.transitions, m.failovers, m.moved, m.failTime,
		&clusterGauges{m: m})
}

// Pushed implements monitor.Metrics.
func (m *Metrics) Pushed(node string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.pushes.WithLabelValues(node, result).Inc()
	m.pushTime.Observe(d.Seconds())
}

// Probed implements monitor.Metrics.
func (m *Metrics) Probed(node, miss string) {
	if m == nil {
		return
	}
	m.probes.WithLabelValues(node).Inc()
	if miss != "" {
		m.misses.WithLabelValues(node, miss).Inc()
	}
}

// NodeTransition implements monitor.Metrics.
func (m *Metrics) NodeTransition(id string, _, to failover.State) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(to.String()).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	if to == failover.Failed {
		m.failedAt[id] = m.now()
	} else {
		delete(m.failedAt, id)
	}
}

// FailedOver implements monitor.Metrics. Every failover is observed in
// the duration histogram, with 0 when this monitor did not see the node's
// failure first (so its count is the failovers').
func (m *Metrics) FailedOver(id string, arrays int) {
	if m == nil {
		return
	}
	m.failovers.Inc()
	m.moved.Add(float64(arrays))
	m.mu.Lock()
	at, ok := m.failedAt[id]
	m.mu.Unlock()
	var d time.Duration
	if ok {
		d = m.now().Sub(at)
	}
	m.failTime.Observe(d.Seconds())
}

// Cluster implements monitor.Metrics.
func (m *Metrics) Cluster(s monitor.ClusterStats) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.cluster = &s
	m.mu.Unlock()
}

// clusterGauges exports the last ClusterStats: a collector, so a PD that
// is gone disappears with the next round.
type clusterGauges struct{ m *Metrics }

var (
	descOwned = prometheus.NewDesc(metrics.Namespace+"_monitor_owned_nodes", "Nodes this monitor drives.", nil, nil)
	descNodes = prometheus.NewDesc(metrics.Namespace+"_cluster_nodes", "Disk and controller nodes in the store.", nil, nil)
	descDAs   = prometheus.NewDesc(metrics.Namespace+"_cluster_disk_arrays", "Disk arrays by health (healthy, degraded, failed, unknown).",
		[]string{"health"}, nil)
	pdLabels = []string{"dn", "pd", "location"}
	descUsed = prometheus.NewDesc(metrics.Namespace+"_cluster_pd_used_bytes", "Bytes of a physical disk's capacity allocated to virtual disks.", pdLabels, nil)
	descFree = prometheus.NewDesc(metrics.Namespace+"_cluster_pd_free_bytes", "Bytes of a physical disk's capacity not allocated.", pdLabels, nil)
)

func (clusterGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOwned, descNodes, descDAs, descUsed, descFree} {
		ch <- d
	}
}

func (g clusterGauges) Collect(ch chan<- prometheus.Metric) {
	g.m.mu.Lock()
	s := g.m.cluster
	g.m.mu.Unlock()
	if s == nil {
		return // no round yet
	}
	ch <- prometheus.MustNewConstMetric(descOwned, prometheus.GaugeValue, float64(s.OwnedNodes))
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(s.Nodes))
	for h, n := range s.DAs {
		ch <- prometheus.MustNewConstMetric(descDAs, prometheus.GaugeValue, float64(n), h)
	}
	for _, pd := range s.PDs {
		used := pd.TotalBytes - min(pd.FreeBytes, pd.TotalBytes)
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(used), pd.DN, pd.PD, pd.Location)
		ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(pd.FreeBytes), pd.DN, pd.PD, pd.Location)
	}
}
