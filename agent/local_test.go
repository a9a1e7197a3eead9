package agent_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
)

// A client in the process is answered as a gRPC caller is: the role policy
// for the identity it states, the same error codes; a stopped agent
// refuses it.
func TestLocalClient(t *testing.T) {
	n := agenttest.StartNode(t, agenttest.Config{Role: agent.RoleDN, Name: "dn0"})
	ctx := srvCtx(t)
	mon := n.Agent().Local(mtls.Identity{Role: mtls.RoleMonitor, Name: "m0"})
	h, err := mon.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	node, pd, vd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	req := dnRequest(7, node, pd, vd, da, cntlr, 1)
	req.AgentId = h.GetAgentId()
	rep, err := mon.Sync(ctx, req)
	require.NoError(t, err)
	allOK(t, rep)
	req.Generation = 6
	_, err = mon.Sync(ctx, req)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "stale: %v", err)
	req.Generation, req.StoreRevision = 8, 8
	req.AgentId = agent.NewAgentID()
	_, err = mon.Sync(ctx, req)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "another agent's: %v", err)

	for id, code := range map[mtls.Identity]codes.Code{
		{Role: mtls.RoleAdmin, Name: "alice"}: codes.PermissionDenied,
		{Role: mtls.RoleAgent, Name: "dn1"}:   codes.PermissionDenied,
		{Role: mtls.RolePortal, Name: "p"}:    codes.PermissionDenied,
		{Role: mtls.RoleMonitor}:              codes.Unauthenticated,
		{Role: "root", Name: "x"}:             codes.Unauthenticated,
		{Role: mtls.RoleMonitor, Name: "a/b"}: codes.Unauthenticated,
	} {
		_, err := n.Agent().Local(id).Sync(ctx, req)
		require.Equal(t, code, status.Code(err), "%+v: %v", id, err)
		_, err = n.Agent().Local(id).Reanchor(ctx, &agentpb.ReanchorRequest{})
		require.Equal(t, code, status.Code(err), "%+v: %v", id, err)
	}
	_, err = n.Agent().Local(mtls.Identity{Role: mtls.RoleAdmin, Name: "alice"}).Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err, "an operator may ask")

	a := n.Agent()
	n.StopAgent()
	_, err = a.Local(mtls.Identity{Role: mtls.RoleMonitor, Name: "m0"}).Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
}
