package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest"
)

func TestSyncAndHealth(t *testing.T) {
	fake := srvFake(t)
	r := srvStart(t, srvConfig(t, agent.RoleDN, fake))
	c := srvDial(t, r.addr)
	ctx := srvCtx(t)

	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, "dn", h.Role)
	require.Zero(t, h.Generation, "nothing applied yet")
	require.Contains(t, h.SpdkVersion, "SPDK v24.01")
	require.NotEmpty(t, h.InstanceId)

	node, pd, vd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	rep, err := c.Sync(ctx, dnRequest(7, node, pd, vd, da, cntlr, 1))
	require.NoError(t, err)
	require.EqualValues(t, 7, rep.Generation)
	require.Equal(t, h.InstanceId, rep.InstanceId)
	require.Len(t, rep.Objects, 2)
	allOK(t, rep)
	h, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 7, h.Generation)
}

func TestInstanceIDChangesWithSPDKAndAgent(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleDN, fake)
	r := srvStart(t, cfg)
	c := srvDial(t, r.addr)
	ctx := srvCtx(t)
	id := func(c agentpb.AgentClient) string {
		h, err := c.Health(ctx, &agentpb.HealthRequest{})
		require.NoError(t, err)
		return h.InstanceId
	}
	first := id(c)
	require.Equal(t, first, id(c), "stable while nothing restarts")

	// A restarted spdk_tgt lost its state: the identity changes.
	require.NoError(t, fake.Restart(true))
	srvInit(t, fake)
	second := id(c)
	require.NotEqual(t, first, second)

	// So does a restarted agent on the same SPDK.
	require.NoError(t, r.stop())
	r2 := srvStart(t, cfg)
	third := id(srvDial(t, r2.addr))
	require.NotEqual(t, second, third)
	require.NotEqual(t, first, third)
}

func TestGenerationAndEpochGuardSurviveRestart(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.StateDir = t.TempDir()
	r := srvStart(t, cfg)
	c := srvDial(t, r.addr)
	ctx := srvCtx(t)
	node, pd, vd, da := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	a, b, d := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()

	rep, err := c.Sync(ctx, dnRequest(5, node, pd, vd, da, a, 2))
	require.NoError(t, err)
	allOK(t, rep)
	refused := func(c agentpb.AgentClient, req *agentpb.SyncRequest) {
		t.Helper()
		fake.ResetCounts()
		_, err := c.Sync(ctx, req)
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
		require.Empty(t, mutations(fake), "a refused sync changes nothing")
	}
	refused(c, dnRequest(4, node, pd, vd, da, b, 2))
	refused(c, dnRequest(6, node, pd, vd, da, b, 1)) // a newer generation but an older epoch
	require.Equal(t, []string{string(nvmeof.PrimaryHostNQN(a, 2))}, hostsOf(t, fake, vd))

	_, err = c.Sync(ctx, dnRequest(5, node, pd, vd, da, a, 2))
	require.NoError(t, err, "an equal generation re-applies")
	rep, err = c.Sync(ctx, dnRequest(6, node, pd, vd, da, b, 3))
	require.NoError(t, err)
	allOK(t, rep)
	require.Equal(t, []string{string(nvmeof.PrimaryHostNQN(b, 3))}, hostsOf(t, fake, vd))

	// A restarted agent still refuses what it refused before.
	require.NoError(t, r.stop())
	c = srvDial(t, srvStart(t, cfg).addr)
	refused(c, dnRequest(5, node, pd, vd, da, a, 3))
	refused(c, dnRequest(7, node, pd, vd, da, d, 2))
	require.Equal(t, []string{string(nvmeof.PrimaryHostNQN(b, 3))}, hostsOf(t, fake, vd))
	rep, err = c.Sync(ctx, dnRequest(7, node, pd, vd, da, d, 3))
	require.NoError(t, err)
	allOK(t, rep)
	require.Equal(t, []string{string(nvmeof.PrimaryHostNQN(d, 3))}, hostsOf(t, fake, vd))

	// Without a state dir, a restarted agent starts over.
	cfg.StateDir = ""
	r3 := srvStart(t, cfg)
	_, err = srvDial(t, r3.addr).Sync(ctx, dnRequest(1, node, pd, vd, da, d, 1))
	require.NoError(t, err)
}

func TestRefusesTheOtherRolesState(t *testing.T) {
	fake := srvFake(t)
	ctx := srvCtx(t)
	dn := srvDial(t, srvStart(t, srvConfig(t, agent.RoleDN, fake)).addr)
	_, err := dn.Sync(ctx, &agentpb.SyncRequest{Generation: 1, NodeId: nvmeof.NewID(), State: &agentpb.SyncRequest_Cn{Cn: &agentpb.CnState{}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	cn := srvDial(t, srvStart(t, srvConfig(t, agent.RoleCN, srvFake(t))).addr)
	_, err = cn.Sync(ctx, dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1))
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	h, err := cn.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, "cn", h.Role)
}

func TestWrongNodeIsRefused(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.NodeID = nvmeof.NewID()
	c := srvDial(t, srvStart(t, cfg).addr)
	ctx := srvCtx(t)
	_, err := c.Sync(ctx, dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1))
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	_, err = c.Sync(ctx, dnRequest(1, cfg.NodeID, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1))
	require.NoError(t, err)
}

func TestSPDKDownIsUnavailableAndConsumesNoGeneration(t *testing.T) {
	fake := srvFake(t)
	c := srvDial(t, srvStart(t, srvConfig(t, agent.RoleDN, fake)).addr)
	ctx := srvCtx(t)
	node, pd, vd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	fake.Crash()
	_, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = c.Sync(ctx, dnRequest(9, node, pd, vd, da, cntlr, 1))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	require.NoError(t, fake.Restart(true))
	srvInit(t, fake)
	rep, err := c.Sync(ctx, dnRequest(8, node, pd, vd, da, cntlr, 1))
	require.NoError(t, err, "generation 9 was never applied")
	allOK(t, rep)
}

func TestServeStopsWithASyncInFlight(t *testing.T) {
	fake := srvFake(t)
	r := srvStart(t, srvConfig(t, agent.RoleDN, fake))
	c := srvDial(t, r.addr)
	fake.Inject("bdev_malloc_create", spdktestHang())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Sync(context.Background(), dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1))
		errc <- err
	}()
	waitFor(t, func() bool { return fake.RPCCount("bdev_malloc_create") > 0 })
	require.NoError(t, r.stop(), "Serve returns once the hung sync is cancelled")
	<-errc
}

// Health probes SPDK on its own connection: a Sync whose requests are held
// up in SPDK (here one that takes 3 s) does not delay it, so a busy node
// is not mistaken for a dead one.
func TestHealthAnswersDuringALongSync(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.HealthTimeout = time.Second
	r := srvStart(t, cfg)
	c := srvDial(t, r.addr)
	ctx := srvCtx(t)
	before, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)

	fake.Inject("bdev_malloc_create", spdktest.Fault{Latency: 3 * time.Second, Times: 1})
	synced := make(chan error, 1)
	go func() {
		_, err := c.Sync(ctx, dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1))
		synced <- err
	}()
	require.Eventually(t, func() bool { return fake.RPCCount("bdev_malloc_create") == 1 }, 10*time.Second, time.Millisecond)
	for range 3 {
		h, err := c.Health(ctx, &agentpb.HealthRequest{})
		require.NoError(t, err, "health during the sync")
		require.Equal(t, before.InstanceId, h.InstanceId)
	}
	select {
	case err := <-synced:
		t.Fatalf("the sync was not held up: %v", err)
	default:
	}
	require.NoError(t, <-synced)
}
