package monitor

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
)

// A Health answered while the worker's own push is being applied shows
// that push's generation: it is not state another monitor pushed, and must
// not force the node through a second whole sync (it did for every node of
// a failover). A generation beyond the push in flight still is foreign.
func TestHealthDuringOwnPushIsNotForeign(t *testing.T) {
	w := &worker{log: hclog.NewNullLogger(), kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		snap: &Snapshot{Revision: 20}}
	w.applied.Store(5)
	forced := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.force
	}

	w.sending.Store(12)
	w.sawHealth(&agentpb.HealthReply{Generation: 12, GuardGeneration: 12})
	require.False(t, forced(), "the generation in flight is this worker's own")
	require.False(t, w.suspect.Load())

	w.sawHealth(&agentpb.HealthReply{Generation: 13, GuardGeneration: 13})
	require.True(t, forced(), "a generation beyond the push in flight is foreign")
	require.True(t, w.suspect.Load())

	// With no push in flight, anything beyond the applied generation is.
	w.mu.Lock()
	w.force = false
	w.mu.Unlock()
	w.suspect.Store(false)
	w.sending.Store(0)
	w.sawHealth(&agentpb.HealthReply{Generation: 6, GuardGeneration: 6})
	require.True(t, forced())
}
