package agent_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

func TestAgentIDIsPersistent(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.StateDir = t.TempDir()
	r := srvStart(t, cfg)
	id := r.a.AgentID()
	require.NoError(t, agent.ValidateAgentID(id))
	h, err := srvDial(t, r.addr).Health(srvCtx(t), &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, id, h.AgentId)
	require.Empty(t, h.NodeName, "no certificate, no node name")

	require.NoError(t, r.stop())
	require.Equal(t, id, srvStart(t, cfg).a.AgentID(), "the same ID after a restart")
	cfg.StateDir = ""
	require.NotEqual(t, id, srvStart(t, cfg).a.AgentID(), "without a state dir: a new ID")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "agent-id"), []byte("dn0\n"), 0o600))
	cfg.StateDir = dir
	_, err = agent.New(cfg)
	require.ErrorIs(t, err, agent.ErrState, "a damaged ID is not silently replaced")
}

func TestValidateAgentID(t *testing.T) {
	for range 100 {
		require.NoError(t, agent.ValidateAgentID(agent.NewAgentID()))
	}
	for _, bad := range []string{"", nvmeof.NewID(), "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d", "6F1C2D3E-4A5B-4C6D-8E7F-8091A2B3C4D5",
		"6f1c2d3e_4a5b-4c6d-8e7f-8091a2b3c4d5", "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5/"} {
		require.Error(t, agent.ValidateAgentID(bad), bad)
	}
}

func TestSyncNeedsThisAgentsID(t *testing.T) {
	fake := srvFake(t)
	r := srvStart(t, srvConfig(t, agent.RoleDN, fake))
	c := srvDialRaw(t, r.addr)
	ctx := srvCtx(t)
	req := dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1)
	fake.ResetCounts()
	_, err := c.Sync(ctx, req)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "no agent id: %v", err)
	req.AgentId = agent.NewAgentID()
	_, err = c.Sync(ctx, req)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "another agent's id: %v", err)
	require.ErrorContains(t, err, r.a.AgentID())
	require.Empty(t, mutations(fake))
	req.AgentId = r.a.AgentID()
	rep, err := c.Sync(ctx, req)
	require.NoError(t, err)
	allOK(t, rep)
}

func TestGenerationAndEpochsAreBoundedByTheStoreRevision(t *testing.T) {
	fake := srvFake(t)
	c := srvDial(t, srvStart(t, srvConfig(t, agent.RoleDN, fake)).addr)
	ctx := srvCtx(t)
	node, pd, vd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	fake.ResetCounts()
	for name, edit := range map[string]func(*agentpb.SyncRequest){
		"no store revision":      func(r *agentpb.SyncRequest) { r.StoreRevision = 0 },
		"generation above it":    func(r *agentpb.SyncRequest) { r.Generation = math.MaxInt64 },
		"epoch above it":         func(r *agentpb.SyncRequest) { r.GetDn().Pds[0].Vds[0].Epoch = 11 },
		"a malformed node name":  func(r *agentpb.SyncRequest) { r.NodeName = "a b" },
		"negative store revison": func(r *agentpb.SyncRequest) { r.StoreRevision = -1 },
	} {
		req := dnRequest(10, node, pd, vd, da, cntlr, 1)
		edit(req)
		_, err := c.Sync(ctx, req)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
	}
	require.Empty(t, mutations(fake))
	req := dnRequest(10, node, pd, vd, da, cntlr, 10)
	req.StoreRevision = 12 // read after the state was built
	_, err := c.Sync(ctx, req)
	require.NoError(t, err)
}

// A forged request (no TLS) that carries the largest generation and epoch
// as its own store revision is accepted; the guard then refuses every
// real state, also after a restart, until a Reanchor with the store's
// values resets it.
func TestReanchorRecoversAPoisonedGuard(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.StateDir = t.TempDir()
	r := srvStart(t, cfg)
	c := srvDial(t, r.addr)
	ctx := srvCtx(t)
	node, pd, vd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()

	_, err := c.Sync(ctx, dnRequest(20, node, pd, vd, da, cntlr, 3))
	require.NoError(t, err)
	poison := dnRequest(math.MaxInt64, node, pd, vd, da, cntlr, math.MaxInt64)
	_, err = c.Sync(ctx, poison)
	require.NoError(t, err, "without TLS nothing tells a forged request from a monitor's")
	_, err = c.Sync(ctx, dnRequest(21, node, pd, vd, da, cntlr, 3))
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)

	require.NoError(t, r.stop())
	r = srvStart(t, cfg)
	c = srvDial(t, r.addr)
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.EqualValues(t, math.MaxInt64, h.GuardGeneration, "persisted")
	require.EqualValues(t, math.MaxInt64, h.GuardMaxEpoch)
	_, err = c.Sync(ctx, dnRequest(21, node, pd, vd, da, cntlr, 3))
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)

	good := &agentpb.ReanchorRequest{AgentId: r.a.AgentID(), NodeId: node, StoreRevision: 25,
		ExpectGeneration: h.GuardGeneration, ExpectMaxEpoch: h.GuardMaxEpoch, Generation: 21, Epochs: map[string]int64{da: 3}}
	for name, edit := range map[string]func(*agentpb.ReanchorRequest) codes.Code{
		"another agent": func(q *agentpb.ReanchorRequest) codes.Code {
			q.AgentId = agent.NewAgentID()
			return codes.FailedPrecondition
		},
		"guard changed":        func(q *agentpb.ReanchorRequest) codes.Code { q.ExpectGeneration = 20; return codes.FailedPrecondition },
		"generation above rev": func(q *agentpb.ReanchorRequest) codes.Code { q.Generation = 26; return codes.InvalidArgument },
		"epoch above rev":      func(q *agentpb.ReanchorRequest) codes.Code { q.Epochs[da] = 26; return codes.InvalidArgument },
		"bad da id":            func(q *agentpb.ReanchorRequest) codes.Code { q.Epochs["x"] = 1; return codes.InvalidArgument },
		"no store revision":    func(q *agentpb.ReanchorRequest) codes.Code { q.StoreRevision = 0; return codes.InvalidArgument },
		"bad node id":          func(q *agentpb.ReanchorRequest) codes.Code { q.NodeId = "dn0"; return codes.InvalidArgument },
	} {
		q := &agentpb.ReanchorRequest{AgentId: good.AgentId, NodeId: good.NodeId, StoreRevision: good.StoreRevision,
			ExpectGeneration: good.ExpectGeneration, ExpectMaxEpoch: good.ExpectMaxEpoch, Generation: good.Generation,
			Epochs: map[string]int64{da: 3}}
		want := edit(q)
		_, err := c.Reanchor(ctx, q)
		require.Equal(t, want, status.Code(err), "%s: %v", name, err)
	}
	rep, err := c.Reanchor(ctx, good)
	require.NoError(t, err)
	require.EqualValues(t, math.MaxInt64, rep.PreviousGeneration)
	_, err = c.Reanchor(ctx, &agentpb.ReanchorRequest{AgentId: good.AgentId, NodeId: node, StoreRevision: 25,
		ExpectGeneration: 21, ExpectMaxEpoch: 3, Generation: 1})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "a guard within the store is never lowered: %v", err)

	_, err = c.Sync(ctx, dnRequest(20, node, pd, vd, da, cntlr, 3))
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "the guard holds the store's values: %v", err)
	rep2, err := c.Sync(ctx, dnRequest(21, node, pd, vd, da, cntlr, 3))
	require.NoError(t, err)
	allOK(t, rep2)
	require.NoError(t, r.stop())
	h, err = srvDial(t, srvStart(t, cfg).addr).Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 21, h.GuardGeneration, "the re-anchor is persisted")
	require.EqualValues(t, 3, h.GuardMaxEpoch)
}
