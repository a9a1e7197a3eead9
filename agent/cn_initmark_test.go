package agent

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// Before its DA is marked initialized, a primary exports to its
// secondaries only, and a secondary re-exports nothing: no host reaches
// the array through either, with its initiator or any host NQN. Once the
// mark is in, a secondary's sync attaches and re-exports even before the
// primary's next sync admits the host (the two syncs run side by side),
// and the host reads through the secondary what it wrote through the
// primary.
func TestCNSecondariesAttachBeforeTheHost(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 3)
	cl.syncDNs()
	p := cl.cns[0]
	out := p.syncCN(cl.cnStateHosts(0, cnTestInitiator, cnTestHost2))
	port := cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0])
	require.False(t, port.GetOk())
	require.Contains(t, port.GetError(), "is not initialized yet")
	require.True(t, port.GetSecondariesOnly())
	require.ElementsMatch(t, []string{string(nvmeof.HostNQN(cl.cntlrs[1])), string(nvmeof.HostNQN(cl.cntlrs[2]))},
		cnHostNQNs(p.subsystem(cl.nqn)), "the secondaries, no host")
	for _, host := range []string{cnTestInitiator, cnTestHost2} {
		_, err := cl.dialAs(0, host)
		require.Error(t, err, "%s through the primary before the mark", host)
	}

	// A secondary pushed before the mark (as by a monitor that admits it
	// early) attaches nothing and exports nothing.
	s := cl.cns[1]
	out = s.syncCN(cl.cnStateHosts(1, cnTestInitiator, cnTestHost2))
	sport := cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[1])
	require.False(t, sport.GetOk())
	require.Contains(t, sport.GetError(), "is not initialized yet")
	require.False(t, sport.GetSecondariesOnly(), "only a primary's port says so")
	require.Empty(t, s.cnOwned())
	_, err := cl.dialAs(1, cnTestInitiator)
	require.Error(t, err)

	// The mark: the secondaries first, the primary after.
	cl.initialized = true
	for i := 1; i < 3; i++ {
		cl.cns[i].syncCNOK(cl.cnStateHosts(i, cnTestInitiator, cnTestHost2))
		require.Equal(t, cl.wantSecondaryObjects(), cl.cns[i].cnOwned(), "controller %d", i)
	}
	_, err = cl.dialAs(0, cnTestInitiator)
	require.Error(t, err, "the primary admits the host only in its sync after the mark")
	out = p.syncCNOK(cl.cnStateHosts(0, cnTestInitiator, cnTestHost2))
	require.False(t, cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0]).GetSecondariesOnly())

	data := cnPattern(128<<10, 0x5a)
	conn, err := cl.dialAs(0, cnTestInitiator)
	require.NoError(t, err)
	cnWrite(t, conn, data)
	conn, err = cl.dialAs(2, cnTestHost2)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, cnRead(t, conn, len(data))))

	for i, cn := range cl.cns {
		cn.fake.ResetCounts()
		cn.syncCNOK(cl.cnStateHosts(i, cnTestInitiator, cnTestHost2))
		require.Empty(t, cn.mutations(), "controller %d converged", i)
	}
}

// An array without secondaries has no exporter before the mark: nobody
// could use it.
func TestCNLonePrimaryExportsAfterTheMark(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.syncDNs()
	p := cl.cns[0]
	out := p.syncCN(cl.cnState(0))
	port := cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0])
	require.False(t, port.GetOk())
	require.Contains(t, port.GetError(), "is not initialized yet")
	require.False(t, port.GetSecondariesOnly())
	require.Nil(t, p.subsystem(cl.nqn))
	cl.initialized = true
	p.syncCNOK(cl.cnState(0))
	require.Equal(t, []string{cnTestInitiator}, cnHostNQNs(p.subsystem(cl.nqn)))
}
