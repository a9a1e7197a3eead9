package monitor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store/memstore"
)

// A node's failure asks for a round that RoundInterval does not hold back
// (its failover's fence push waits for that round), also while the loop
// paces after another round; other requests are paced.
func TestFailureRoundIsNotPaced(t *testing.T) {
	s, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	cfg := testConfig(s, "m1")
	cfg.RoundInterval = time.Hour // paced rounds never come within the test
	m, _ := startMonitor(t, cfg)
	require.Eventually(t, func() bool { return m.rounds.Load() >= 1 }, 30*time.Second, 5*time.Millisecond)
	// The loop now waits for a request or paces after one (the cache's
	// first List requests a round): a paced request would wait an hour.
	m.requestRound()
	n := m.rounds.Load()
	m.requestFailoverRound()
	require.Eventually(t, func() bool { return m.rounds.Load() > n }, 30*time.Second, 5*time.Millisecond)
	n = m.rounds.Load()
	m.requestFailoverRound()
	require.Eventually(t, func() bool { return m.rounds.Load() > n }, 30*time.Second, 5*time.Millisecond)
}
