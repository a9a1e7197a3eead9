package agent_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// recordMetrics is an agent.Metrics that keeps what it was told.
type recordMetrics struct {
	mu      sync.Mutex
	syncs   []int // RPCs per Sync
	refused int
	methods map[string]int
}

func (r *recordMetrics) Synced(_ time.Duration, rpcs int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.refused++
		return
	}
	r.syncs = append(r.syncs, rpcs)
}

func (r *recordMetrics) SPDKCall(method string, _ time.Duration, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.methods[method]++
}

func TestMetricsAndReady(t *testing.T) {
	fake := srvFake(t)
	m := &recordMetrics{methods: map[string]int{}}
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.Metrics = m
	r := srvStart(t, cfg)
	ctx := srvCtx(t)
	require.NoError(t, r.a.Ready(ctx))
	c := srvDial(t, r.addr)
	node, pd, vd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	_, err := c.Sync(ctx, dnRequest(7, node, pd, vd, da, cntlr, 1))
	require.NoError(t, err)
	m.mu.Lock()
	require.Len(t, m.syncs, 1)
	require.Positive(t, m.syncs[0], "a first Sync creates objects")
	total := 0
	for _, n := range m.methods {
		total += n
	}
	require.GreaterOrEqual(t, total, m.syncs[0])
	require.Positive(t, m.methods["bdev_lvol_create"])
	m.mu.Unlock()

	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	fake.Close()
	require.Error(t, r.a.Ready(ctx), "SPDK is gone")
	req := dnRequest(8, node, pd, vd, da, cntlr, 1)
	req.AgentId = h.AgentId
	_, err = srvDialRaw(t, r.addr).Sync(ctx, req)
	require.Error(t, err)
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Equal(t, 1, m.refused)
	require.Len(t, m.syncs, 1)
}
