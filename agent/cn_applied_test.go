package agent

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest"
)

// The primary's controller status carries the DA lvol's size as it stands
// after the sync (the monitor's applied size): the old size while a grow
// fails, the new one once it is done; a secondary reports none.
func TestCNReportsAppliedSize(t *testing.T) {
	sc := newSizedCluster(t)
	out := sc.cns[0].syncCNOK(sc.state(0))
	require.EqualValues(t, cnTestDABytes, cnStatus(t, out, agentpb.Kind_KIND_CNTLR, sc.cntlrs[0]).GetSizeBytes())
	out = sc.cns[1].syncCNOK(sc.state(1))
	require.Zero(t, cnStatus(t, out, agentpb.Kind_KIND_CNTLR, sc.cntlrs[1]).GetSizeBytes(), "a secondary holds no lvol")

	sc.size = cnTestDABytes + 16<<20
	sc.cns[0].fake.Inject("bdev_lvol_resize", spdktest.Fault{Error: &spdktest.Error{Code: -28, Message: "No space left on device"}, Times: 1})
	out = sc.cns[0].syncCN(sc.state(0))
	st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, sc.cntlrs[0])
	require.False(t, st.GetOk())
	require.EqualValues(t, cnTestDABytes, st.GetSizeBytes(), "the grow failed: the old size")

	out = sc.cns[0].syncCNOK(sc.state(0))
	st = cnStatus(t, out, agentpb.Kind_KIND_CNTLR, sc.cntlrs[0])
	require.True(t, st.GetOk(), st.GetError())
	require.Equal(t, sc.size, st.GetSizeBytes(), "grown")
	require.Equal(t, sc.size, sc.lvol().SizeBytes())
}

// A clone's status carries its lvol's size and whether it is inflated,
// after each modify.
func TestCNReportsCloneSizeAndInflated(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	snapID, cloneID := nvmeof.NewID(), nvmeof.NewID()
	clone := &agentpb.CloneSpec{Id: cloneID, SnapId: snapID, SizeBytes: cnTestDABytes}
	v := &cnVols{snaps: []string{snapID}, clones: []*agentpb.CloneSpec{clone}}
	v.syncAll(cl)
	p := cl.cns[0]
	st := cnStatus(t, p.syncCNOK(v.state(cl, 0)), agentpb.Kind_KIND_CLONE, cloneID)
	require.True(t, st.GetOk(), st.GetError())
	require.EqualValues(t, cnTestDABytes, st.GetSizeBytes())
	require.False(t, st.GetInflated())

	clone.Inflate = true
	p.fake.Inject("bdev_lvol_inflate", spdktest.Fault{Error: &spdktest.Error{Code: -5, Message: "Input/output error"}, Times: 1})
	st = cnStatus(t, p.syncCN(v.state(cl, 0)), agentpb.Kind_KIND_CLONE, cloneID)
	require.False(t, st.GetOk())
	require.False(t, st.GetInflated(), "the inflate failed")
	st = cnStatus(t, p.syncCNOK(v.state(cl, 0)), agentpb.Kind_KIND_CLONE, cloneID)
	require.True(t, st.GetOk(), st.GetError())
	require.True(t, st.GetInflated())
	require.EqualValues(t, cnTestDABytes, st.GetSizeBytes())

	clone.SizeBytes = 2 * cnTestDABytes
	st = cnStatus(t, p.syncCNOK(v.state(cl, 0)), agentpb.Kind_KIND_CLONE, cloneID)
	require.EqualValues(t, 2*cnTestDABytes, st.GetSizeBytes(), "grown")
	require.True(t, st.GetInflated())
}
