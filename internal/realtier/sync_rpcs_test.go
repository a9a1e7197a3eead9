package realtier

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/internal/realbench"
)

// TestRealResyncReadsAFixedNumber: on real spdk_tgt, a disk node and a
// controller node synced again with nothing changed send only reads, and
// the same reads for 6 arrays (12 VDs) as for 12 (24 VDs): one listing
// per kind of object, not one request per object (issue 18;
// internal/realbench measures it at 1,000 VDs and 500 arrays).
func TestRealResyncReadsAFixedNumber(t *testing.T) {
	e := realbench.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// -s 2048: a target's own start-up takes ~900 of the 1024 MiB of the
	// usual -s, which leaves too little for the VDs' malloc PD.
	dn := e.StartNode(realbench.NodeConfig{Role: agent.RoleDN, MemMB: 2048})
	cn := e.StartNode(realbench.NodeConfig{Role: agent.RoleCN, MemMB: 2048})
	all := realbench.NewLayout(12, 2, e.Listener("dn"))
	resync := func(l realbench.Layout) (dnReads, cnReads map[string]int) {
		t.Helper()
		require.NoError(t, dn.SyncDN(ctx, l.DN))
		require.NoError(t, cn.CreateArrays(ctx, l.CN))
		l.SetInitialized()
		require.NoError(t, cn.SyncCN(ctx, l.CN))
		for _, n := range []*realbench.Node{dn, cn} {
			n.Meter.Reset()
		}
		require.NoError(t, dn.SyncDN(ctx, l.DN))
		require.NoError(t, cn.SyncCN(ctx, l.CN))
		dnReads, cnReads = dn.Meter.Counts(), cn.Meter.Counts()
		require.NoError(t, realbench.CheckReadOnly(dnReads), "disk node")
		require.NoError(t, realbench.CheckReadOnly(cnReads), "controller node")
		return dnReads, cnReads
	}
	dnSmall, cnSmall := resync(all.First(6))
	dnLarge, cnLarge := resync(all)
	t.Logf("disk node: %s", realbench.FormatCounts(dnLarge))
	t.Logf("controller node: %s", realbench.FormatCounts(cnLarge))
	require.Equal(t, dnSmall, dnLarge, "disk node: 12 VDs, then 24")
	require.Equal(t, cnSmall, cnLarge, "controller node: 6 arrays, then 12")
	for _, n := range []*realbench.Node{dn, cn} {
		require.NoError(t, n.Crashed())
	}
}
