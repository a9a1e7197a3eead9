package monitor

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store/memstore"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) warnings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), "the store has no nodes and no disk arrays")
}

func TestWarnEmptyStore(t *testing.T) {
	st, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	var logs syncBuffer
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	cfg := DefaultConfig(st, "m1")
	cfg.Insecure = true
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	cfg.Now = func() time.Time { return now }
	m, err := New(cfg)
	require.NoError(t, err)
	for _, step := range []struct {
		at    time.Duration
		empty bool
		warns int
	}{
		{0, true, 0},
		{59 * time.Second, true, 0},  // empty for less than a minute
		{61 * time.Second, true, 1},  // now it says so
		{90 * time.Second, true, 1},  // once per minute
		{122 * time.Second, true, 2}, // again a minute later
		{130 * time.Second, false, 2},
		{140 * time.Second, true, 2}, // the clock starts over
		{199 * time.Second, true, 2},
		{201 * time.Second, true, 3},
	} {
		now = t0.Add(step.at)
		m.warnEmpty(step.empty)
		require.Equal(t, step.warns, logs.warnings(), "at %v", step.at)
	}
}

func TestClusterStats(t *testing.T) {
	snap := &Snapshot{
		DNs: map[string]*Object[vda.DiskNode]{"dn0": {Key: "dn/dn0", Spec: vda.DiskNode{Name: "dn0", Location: "rack1"}}},
		CNs: map[string]*Object[vda.ControllerNode]{"cn0": {}, "cn1": {}},
		PDs: map[string]*Object[vda.PhysicalDisk]{
			"pd/dn0/b": {Key: "pd/dn0/b", Spec: vda.PhysicalDisk{Name: "b", DNName: "dn0"}},
			"pd/dn0/a": {Key: "pd/dn0/a", Spec: vda.PhysicalDisk{Name: "a", DNName: "dn0", AllocatedBytes: 70}},
		},
		DAs: map[string]*Object[vda.DiskArray]{"x": {Key: "da/x"}, "y": {Key: "da/y"}, "z": {Key: "da/z"}},
		Statuses: map[string]vda.Status{
			"pd/dn0/a": {TotalBytes: 100},
			"da/x":     {Health: vda.HealthHealthy}, "da/y": {Health: vda.HealthDegraded},
		},
	}
	s := clusterStats(snap, 2)
	require.Equal(t, 2, s.OwnedNodes)
	require.Equal(t, 3, s.Nodes)
	require.Equal(t, map[string]int{"healthy": 1, "degraded": 1, "failed": 0, "unknown": 1}, s.DAs)
	require.Len(t, s.PDs, 2)
	require.Equal(t, PDStats{DN: "dn0", PD: "a", Location: "rack1", TotalBytes: 100, FreeBytes: 30}, s.PDs[0])
	require.Equal(t, "b", s.PDs[1].PD)
}
