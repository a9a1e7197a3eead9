package monitor

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/vda-io/vda"
)

// ClusterStats is what one round's snapshot shows, for Metrics.Cluster.
type ClusterStats struct {
	// OwnedNodes are the nodes this monitor drives; Nodes all disk and
	// controller nodes in the store.
	OwnedNodes, Nodes int
	// DAs counts the disk arrays by health ("healthy", "degraded",
	// "failed", "unknown").
	DAs map[string]int
	// PDs are the physical disks, ordered by disk node and name.
	PDs []PDStats
}

// PDStats is one physical disk's capacity.
type PDStats struct {
	DN, PD, Location      string
	TotalBytes, FreeBytes uint64
}

// clusterStats summarises snap for the gauges.
func clusterStats(snap *Snapshot, owned int) ClusterStats {
	s := ClusterStats{OwnedNodes: owned, Nodes: len(snap.DNs) + len(snap.CNs), DAs: map[string]int{}}
	for _, h := range []vda.Health{vda.HealthHealthy, vda.HealthDegraded, vda.HealthFailed, vda.HealthUnknown} {
		s.DAs[healthLabel(h)] = 0
	}
	for _, da := range snap.DAs {
		s.DAs[healthLabel(snap.Statuses[da.Key].Health)]++
	}
	for _, o := range snap.PDs {
		pd := o.Spec
		pd.Status = snap.Statuses[o.Key]
		var loc string
		if dn := snap.DNs[pd.DNName]; dn != nil {
			loc = dn.Spec.Location
		}
		s.PDs = append(s.PDs, PDStats{DN: pd.DNName, PD: pd.Name, Location: loc, TotalBytes: pd.CapacityBytes(), FreeBytes: pd.FreeBytes()})
	}
	slices.SortFunc(s.PDs, func(a, b PDStats) int { return cmp.Or(cmp.Compare(a.DN, b.DN), cmp.Compare(a.PD, b.PD)) })
	return s
}

func healthLabel(h vda.Health) string {
	switch h {
	case vda.HealthHealthy, vda.HealthDegraded, vda.HealthFailed:
		return string(h)
	default:
		return "unknown"
	}
}

// observeCluster reports snap's stats to Metrics, and warns about a store
// that stays empty.
func (m *Monitor) observeCluster(snap *Snapshot) {
	m.warnEmpty(len(snap.DNs)+len(snap.CNs) == 0 && len(snap.DAs) == 0)
	if _, none := m.cfg.Metrics.(nopMetrics); none {
		return
	}
	m.mu.Lock()
	owned := len(m.workers)
	m.mu.Unlock()
	m.cfg.Metrics.Cluster(clusterStats(snap, owned))
}

// emptyWarnEvery is how long a store must stay without nodes and arrays
// before the monitor warns, and how often it repeats the warning.
const emptyWarnEvery = time.Minute

// warnEmpty logs at WARN, once per emptyWarnEvery, while the store has been
// empty (no nodes, no arrays) for longer than emptyWarnEvery: a monitor
// pointed at another store than the portal's (each opened its own embedded
// store) sees exactly that, and cannot tell it from a new cluster.
func (m *Monitor) warnEmpty(empty bool) {
	m.emptyMu.Lock()
	defer m.emptyMu.Unlock()
	now := m.cfg.Now()
	if !empty {
		m.emptySince, m.emptyWarned = time.Time{}, time.Time{}
		return
	}
	if m.emptySince.IsZero() {
		m.emptySince = now
	}
	if now.Sub(m.emptySince) < emptyWarnEvery || (!m.emptyWarned.IsZero() && now.Sub(m.emptyWarned) < emptyWarnEvery) {
		return
	}
	m.emptyWarned = now
	m.log.Warn("the store has no nodes and no disk arrays: is this monitor on the same store as the portal? "+
		"(vda-portal and vda-monitor must share one --db-uri)", "empty_for", now.Sub(m.emptySince).Round(time.Second))
}

// Ready reports whether the monitor serves: it is a live member of the
// store and has completed a round on a snapshot of it.
func (m *Monitor) Ready() error {
	if !m.Live() {
		return errors.New("monitor: not a live member of the store")
	}
	if m.rounds.Load() == 0 {
		return errors.New("monitor: no round on a snapshot of the store yet")
	}
	return nil
}
