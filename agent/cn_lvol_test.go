package agent

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// sizedCluster is a cnCluster whose DA size and QoS the test changes, as
// the monitor does after a da modify.
type sizedCluster struct {
	*cnCluster
	size uint64
	qos  *agentpb.QosSpec
}

func newSizedCluster(t *testing.T) *sizedCluster {
	sc := &sizedCluster{cnCluster: newCNCluster(t, 2, 2, 2), size: cnTestDABytes}
	sc.build()
	return sc
}

func (sc *sizedCluster) state(i int) *agentpb.CnState {
	st := sc.cnState(i)
	st.Cntlrs[0].Da.SizeBytes, st.Cntlrs[0].Da.Qos = sc.size, sc.qos
	return st
}

// sync syncs every live controller, the primary first.
func (sc *sizedCluster) sync() {
	sc.t.Helper()
	sc.cns[sc.primary].syncCNOK(sc.state(sc.primary))
	for i, cn := range sc.cns {
		if i != sc.primary && !sc.down[i] {
			cn.syncCNOK(sc.state(i))
		}
	}
}

// failover crashes the primary's SPDK and promotes controller to.
func (sc *sizedCluster) failover(to int) {
	sc.t.Helper()
	sc.cns[sc.primary].fake.Crash()
	sc.down[sc.primary] = true
	sc.primary, sc.epoch = to, sc.epoch+1
	sc.syncDNs()
	sc.sync()
}

// lvol is the DA lvol as the primary's SPDK lists it.
func (sc *sizedCluster) lvol() spdk.Bdev {
	sc.t.Helper()
	alias := nvmeof.LvolAlias(nvmeof.DALvstoreName(sc.daID), nvmeof.DALvolName(sc.daID))
	bs, err := sc.cns[sc.primary].c.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{Name: alias})
	require.NoError(sc.t, err)
	require.Len(sc.t, bs, 1)
	return bs[0]
}

// sees waits until a host connection reports size bytes for namespace 1.
func sees(t *testing.T, conn *fabric.Conn, size uint64, path string) {
	t.Helper()
	require.Eventually(t, func() bool {
		ni, ok := conn.Info().Namespace(1)
		return ok && ni.NumBlocks*uint64(ni.BlockSize) == size
	}, 20*time.Second, time.Millisecond, "the host connected through the %s sees %d bytes", path, size)
}

// A bigger size grows the DA lvol online: hosts connected through the
// primary and through the secondary (whose bdev_nvme re-reads the
// namespace and resizes its re-exported bdev) see the new size without
// reconnecting, and can write past the old end. A resync changes nothing;
// a smaller size is refused and nothing shrinks.
func TestCNResizeGrowsOnEveryPath(t *testing.T) {
	sc := newSizedCluster(t)
	viaPrimary, viaSecondary := sc.host(0), sc.host(1)
	data := cnPattern(256<<10, 0x21)
	cnWrite(t, viaPrimary, data)
	sees(t, viaSecondary, cnTestDABytes, "secondary")

	sc.size = cnTestDABytes + 16<<20
	for _, cn := range sc.cns {
		cn.fake.ResetCounts()
	}
	start := time.Now()
	sc.sync()
	sees(t, viaPrimary, sc.size, "primary")
	sees(t, viaSecondary, sc.size, "secondary")
	t.Logf("resize on the fake: spec to every path in %v", time.Since(start))
	require.Equal(t, 1, sc.cns[0].fake.RPCCount("bdev_lvol_resize"))
	require.Equal(t, []string{"bdev_lvol_resize"}, sc.cns[0].mutations(), "growing is one call")
	require.Empty(t, sc.cns[1].mutations(), "the secondary learns the size from the primary's export")
	require.Equal(t, sc.size, sc.lvol().SizeBytes())
	exp := nvmeof.ExpBdevName(sc.expID)
	bs, err := sc.cns[1].c.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{Name: exp})
	require.NoError(t, err)
	require.Equal(t, sc.size, bs[0].SizeBytes(), "the secondary's attached bdev grew")

	require.True(t, bytes.Equal(data, cnRead(t, viaSecondary, len(data))))
	tail := cnPattern(64<<10, 0x77)
	_, err = viaSecondary.WriteAt(1, tail, int64(sc.size)-int64(len(tail)))
	require.NoError(t, err, "writing past the old end through the secondary")
	got := make([]byte, len(tail))
	_, err = viaPrimary.ReadAt(1, got, int64(sc.size)-int64(len(tail)))
	require.NoError(t, err)
	require.Equal(t, tail, got)

	for _, cn := range sc.cns {
		cn.fake.ResetCounts()
	}
	sc.sync()
	require.Empty(t, sc.cns[0].mutations(), "a resync")
	require.Empty(t, sc.cns[1].mutations(), "a resync")

	grown := sc.size
	sc.size = cnTestDABytes
	out := sc.cns[0].syncCN(sc.state(0))
	st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, sc.cntlrs[0])
	require.False(t, st.GetOk())
	require.Contains(t, st.GetError(), "not shrinking")
	require.Zero(t, sc.cns[0].fake.RPCCount("bdev_lvol_resize"))
	require.Equal(t, grown, sc.lvol().SizeBytes())
	require.Equal(t, grown, viaPrimary.Info().Namespaces[0].NumBlocks*uint64(viaPrimary.Info().Namespaces[0].BlockSize))
}

// A grown array stays grown when its primary dies: the new primary finds
// the lvol at the spec's size in the lvstore it re-assembles (no resize),
// and the host reads what it wrote past the old end.
func TestCNResizeSurvivesFailover(t *testing.T) {
	sc := newSizedCluster(t)
	sc.size = cnTestDABytes + 8<<20
	sc.sync()
	viaSecondary := sc.host(1)
	sees(t, viaSecondary, sc.size, "secondary")
	tail := cnPattern(128<<10, 0x3c)
	off := int64(sc.size) - int64(len(tail))
	_, err := viaSecondary.WriteAt(1, tail, off)
	require.NoError(t, err)

	sc.cns[1].fake.ResetCounts()
	sc.failover(1)
	require.Zero(t, sc.cns[1].fake.RPCCount("bdev_lvol_resize"), "the lvstore holds the grown lvol")
	require.Equal(t, sc.size, sc.lvol().SizeBytes())
	host := sc.host(1)
	sees(t, host, sc.size, "promoted controller")
	got := make([]byte, len(tail))
	_, err = host.ReadAt(1, got, off)
	require.NoError(t, err)
	require.Equal(t, tail, got)
}

// QoS limits are set once on the DA lvol, not again by a resync, changed
// when the spec changes, set again on a new primary after a failover (a
// re-assembled lvol has none), and removed when the spec drops them.
func TestCNQoSSetOnceAndAfterFailover(t *testing.T) {
	sc := newSizedCluster(t)
	require.Zero(t, sc.cns[0].fake.RPCCount("bdev_set_qos_limit"), "no limits, no call")
	sc.qos = &agentpb.QosSpec{RwIosPerSec: 20000, WMbytesPerSec: 100}
	want := spdk.RateLimits{RWIOsPerSec: 20000, WMBytesPerSec: 100}
	p := sc.cns[0]
	p.fake.ResetCounts()
	sc.sync()
	require.Equal(t, 1, p.fake.RPCCount("bdev_set_qos_limit"))
	require.Equal(t, want, sc.lvol().AssignedRateLimits)

	p.fake.ResetCounts()
	sc.sync()
	require.Zero(t, p.fake.RPCCount("bdev_set_qos_limit"), "a resync sets nothing")
	require.Empty(t, p.mutations())

	sc.qos = &agentpb.QosSpec{RwIosPerSec: 20000, RMbytesPerSec: 50}
	want = spdk.RateLimits{RWIOsPerSec: 20000, RMBytesPerSec: 50}
	sc.sync()
	require.Equal(t, 1, p.fake.RPCCount("bdev_set_qos_limit"))
	require.Equal(t, want, sc.lvol().AssignedRateLimits, "the write limit went, the read limit came")

	sc.cns[1].fake.ResetCounts()
	sc.failover(1)
	require.Equal(t, 1, sc.cns[1].fake.RPCCount("bdev_set_qos_limit"))
	require.Equal(t, want, sc.lvol().AssignedRateLimits, "the new primary's lvol")

	sc.qos = nil
	sc.cns[1].fake.ResetCounts()
	sc.sync()
	require.Equal(t, 1, sc.cns[1].fake.RPCCount("bdev_set_qos_limit"))
	require.Equal(t, spdk.RateLimits{}, sc.lvol().AssignedRateLimits)
	sc.cns[1].fake.ResetCounts()
	sc.sync()
	require.Zero(t, sc.cns[1].fake.RPCCount("bdev_set_qos_limit"))
}

// A QoS that SPDK would round (IOPS not in thousands) or clamp is refused
// as a spec error: the agent never sends it.
func TestCNQoSSpecValidated(t *testing.T) {
	for _, q := range []*agentpb.QosSpec{{RwIosPerSec: 1500}, {RwMbytesPerSec: ^uint64(0)}, {WMbytesPerSec: ^uint64(0) >> 20}} {
		spec := &agentpb.CntlrSpec{CntlrId: nvmeof.NewID(), Primary: true, Epoch: 1,
			Da:  &agentpb.DaSpec{Id: nvmeof.NewID(), SizeBytes: cnTestDABytes, ClusterBytes: cnTestCluster, StripeSizeKb: 64, Qos: q},
			Vds: []*agentpb.VdRef{{Id: nvmeof.NewID(), DnListener: &agentpb.Transport{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: "4420"}}}}
		c := cnValidateCntlr(spec)
		require.ErrorIs(t, c.err, errCNSpec, "%v", q)
		require.Contains(t, c.err.Error(), "qos")
	}
	spec := &agentpb.CntlrSpec{CntlrId: nvmeof.NewID(), Primary: true, Epoch: 1,
		Da: &agentpb.DaSpec{Id: nvmeof.NewID(), SizeBytes: cnTestDABytes, ClusterBytes: cnTestCluster, StripeSizeKb: 64,
			Qos: &agentpb.QosSpec{RwIosPerSec: 3000, RwMbytesPerSec: 1, RMbytesPerSec: 2, WMbytesPerSec: 3}},
		Vds: []*agentpb.VdRef{{Id: nvmeof.NewID(), DnListener: &agentpb.Transport{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: "4420"}}}}
	c := cnValidateCntlr(spec)
	require.NoError(t, c.err)
	require.Equal(t, spdk.RateLimits{RWIOsPerSec: 3000, RWMBytesPerSec: 1, RMBytesPerSec: 2, WMBytesPerSec: 3}, c.qos)
}

// A resize or QoS change that SPDK refuses is reported on the controller
// and retried by the next sync, but the array stays exported: hosts keep
// their volume at its old size and limits.
func TestCNResizeAndQoSFailuresKeepTheExport(t *testing.T) {
	sc := newSizedCluster(t)
	p := sc.cns[0]
	p.fake.Inject("bdev_lvol_resize", spdktest.Fault{Error: &spdktest.Error{Code: -32602, Message: "No space left on device"}, Times: 1})
	p.fake.Inject("bdev_set_qos_limit", spdktest.Fault{Error: &spdktest.Error{Code: -11, Message: "Resource temporarily unavailable"}, Times: 1})
	sc.size, sc.qos = cnTestDABytes+4<<20, &agentpb.QosSpec{RwIosPerSec: 1000}
	out := p.syncCN(sc.state(0))
	st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, sc.cntlrs[0])
	require.False(t, st.GetOk())
	require.Contains(t, st.GetError(), "No space left on device")
	require.Contains(t, st.GetError(), "Resource temporarily unavailable")
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, sc.ports[0]).GetOk(), "the export stays")
	host := sc.host(0)
	sees(t, host, cnTestDABytes, "primary")
	data := cnPattern(64<<10, 0x19)
	cnWrite(t, host, data)
	require.Equal(t, data, cnRead(t, host, len(data)))

	sc.sync()
	require.Equal(t, sc.size, sc.lvol().SizeBytes())
	require.Equal(t, spdk.RateLimits{RWIOsPerSec: 1000}, sc.lvol().AssignedRateLimits)
	sees(t, host, sc.size, "primary")
}
