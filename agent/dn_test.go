package agent

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

func TestDNBuildsRecipeAndResyncOnlyReads(t *testing.T) {
	e := newDNEnv(t)
	pd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	vd1, vd2 := nvmeof.NewID(), nvmeof.NewID()
	st := &agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 128<<20, vdSpec(vd1, da, cntlr, 1, 32), vdSpec(vd2, da, cntlr, 1, 16))}}
	out := e.syncOK(st)
	p := statusOf(t, out, agentpb.Kind_KIND_PD, pd)
	require.EqualValues(t, 31*4<<20, p.GetTotalBytes(), "a 128 MiB malloc holds 31 clusters")
	require.EqualValues(t, (31-8-4)*4<<20, p.GetFreeBytes())

	ss := e.subsystem(nvmeof.VDNQN(vd1))
	require.NotNil(t, ss)
	require.False(t, ss.AllowAnyHost)
	require.Equal(t, nvmeof.SerialNumber(nvmeof.VDNQN(vd1)), ss.SerialNumber)
	require.Equal(t, nvmeof.ModelNumber, ss.ModelNumber)
	require.Equal(t, []spdk.SubsystemHost{{NQN: string(nvmeof.HostNQN(cntlr))}}, ss.Hosts)
	require.Len(t, ss.Namespaces, 1)
	require.Equal(t, nvmeof.NamespaceUUID(nvmeof.VDNQN(vd1)), ss.Namespaces[0].UUID)
	require.Len(t, ss.ListenAddresses, 1)
	require.Equal(t, e.listener.TrSvcID, ss.ListenAddresses[0].TRSvcID)

	e.fake.ResetCounts()
	e.syncOK(st)
	require.Empty(t, e.mutations(), "a repeated sync only reads")
	require.NotZero(t, e.fake.TotalRPCs())

	// Tear down: an empty state deletes everything, in reverse order.
	e.syncOK(&agentpb.DnState{})
	bdevs, err := e.c.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{})
	require.NoError(t, err)
	require.Empty(t, bdevs)
	require.Nil(t, e.subsystem(nvmeof.VDNQN(vd1)))
}
