package agenttest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
)

type registry map[string]*agent.Agent

func (r registry) Add(addr string, a *agent.Agent) { r[addr] = a }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// A Node is a real agent on a fake SPDK: it applies a Sync, keeps its ID
// across Kill and Restart (its state directory), and is refused while down.
func TestNodeLifecycle(t *testing.T) {
	ctx := ctxFor(t)
	reg := registry{}
	n := agenttest.StartNode(t, agenttest.Config{Role: agent.RoleDN, GRPC: true, Register: reg})
	require.Equal(t, n.Addr, n.Name, "named after its gRPC address")
	require.Same(t, n.Agent(), reg[n.Addr], "registered")
	c := n.Client("m0")
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, "dn", h.GetRole())
	id := h.GetAgentId()

	node, pd, vd, da := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	req := &agentpb.SyncRequest{AgentId: id, Generation: 3, StoreRevision: 3, NodeId: node,
		State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{Pds: []*agentpb.PdSpec{{Id: pd,
			Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: 64 << 20}},
			Vds: []*agentpb.VdSpec{{Id: vd, DaId: da, Epoch: 1, SizeBytes: 8 << 20,
				HostNqn: string(nvmeof.PrimaryHostNQN(nvmeof.NewID(), 1))}}}}}}}
	rep, err := c.Sync(ctx, req)
	require.NoError(t, err)
	for _, o := range rep.GetObjects() {
		require.True(t, o.GetOk(), o.GetError())
	}
	// Over gRPC too, at its address.
	gc, err := agent.Dial(ctx, n.Addr)
	require.NoError(t, err)
	defer gc.Close()
	_, err = gc.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)

	old := n.Agent()
	n.Kill()
	require.Nil(t, n.Client("m0"), "down")
	_, err = old.Local(monitorID).Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "a stopped agent is refused")
	_, err = gc.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))

	require.NoError(t, n.Restart(ctx))
	require.NotSame(t, old, n.Agent())
	require.Same(t, n.Agent(), reg[n.Addr], "the new agent is registered")
	h, err = n.Client("m0").Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, id, h.GetAgentId(), "same state directory, same agent")
	require.EqualValues(t, 3, h.GetGuardGeneration(), "the guard survives")
	_, err = n.Client("m0").Sync(ctx, req)
	require.NoError(t, err, "SPDK restarted empty: the same state is built again")
	require.Eventually(t, func() bool { // once the client's reconnect backoff is over
		_, err := gc.Health(ctx, &agentpb.HealthRequest{})
		return err == nil
	}, time.Minute, 5*time.Millisecond, "served again at the same address")

	n.StopAgent()
	require.NoError(t, n.Restart(ctx))
	h, err = n.Client("m0").Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	req.Generation, req.StoreRevision = 4, 4
	rep, err = n.Client("m0").Sync(ctx, req)
	require.NoError(t, err)
	require.Len(t, rep.GetObjects(), 2)

	require.NoError(t, n.Close())
	require.NoError(t, n.Close(), "idempotent")
	require.Error(t, n.Restart(ctx), "closed for good")
}

func TestStartRefusesBadConfig(t *testing.T) {
	_, err := agenttest.Start(context.Background(), agenttest.Config{Role: "xx", Name: "n"})
	require.ErrorIs(t, err, agenttest.ErrConfig)
	_, err = agenttest.Start(context.Background(), agenttest.Config{Role: agent.RoleCN})
	require.ErrorIs(t, err, agenttest.ErrConfig, "in-process only: a name is needed")
}

// A Fake enforces the real agent's rules, records what it gets and can be
// made to fail, hang and restart.
func TestFake(t *testing.T) {
	ctx := ctxFor(t)
	f := agenttest.NewFake(t, agent.RoleCN)
	c, err := agent.Dial(ctx, f.Addr)
	require.NoError(t, err)
	defer c.Close()
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, f.AgentID(), h.GetAgentId())
	req := &agentpb.SyncRequest{AgentId: f.AgentID(), Generation: 5,
		State: &agentpb.SyncRequest_Cn{Cn: &agentpb.CnState{}}}
	_, err = c.Sync(ctx, req)
	require.NoError(t, err)
	require.Equal(t, int64(5), f.LastApplied().GetGeneration())
	req.Generation = 4
	_, err = c.Sync(ctx, req)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "older than applied")
	req.AgentId = "someone else"
	req.Generation = 6
	_, err = c.Sync(ctx, req)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "another agent's")
	require.Len(t, f.Records(), 3)
	require.Greater(t, agenttest.LastSeq(), f.Records()[0].Seq)

	f.SetScript(func(*agentpb.SyncRequest) (*agentpb.SyncReply, error) {
		return nil, status.Error(codes.Unavailable, "scripted")
	})
	req.AgentId = f.AgentID()
	_, err = c.Sync(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err))
	f.SetScript(nil)

	f.SetHang()
	hctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.Sync(hctx, req)
	cancel()
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "hangs until the caller gives up")
	f.Unhang()
	_, err = c.Sync(ctx, req)
	require.NoError(t, err)

	f.SetDown(true)
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	f.SetDown(false)

	f.Stop()
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "refused while stopped")
	f.Restart("i1")
	require.Eventually(t, func() bool {
		h, err := c.Health(ctx, &agentpb.HealthRequest{})
		return err == nil && h.GetInstanceId() == "i1" && h.GetGeneration() == 6
	}, time.Minute, 5*time.Millisecond, "a new instance that remembers its generation")
}

var monitorID = mtls.Identity{Role: mtls.RoleMonitor, Name: "m0"}
