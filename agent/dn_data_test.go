package agent

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// dialVD connects to VD vd's subsystem as a host with hostNQN.
func (e *dnEnv) dialVD(vd *agentpb.VdSpec, hostNQN string) (*fabric.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := e.listener
	return fabric.Dial(ctx, fabric.TransportID{TrType: l.TrType, AdrFam: l.AdrFam, TrAddr: l.TrAddr, TrSvcID: l.TrSvcID},
		string(nvmeof.VDNQN(vd.Id)), hostNQN)
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

// A VD of a deleted DA is wiped for the next tenant: the new VD on the
// same PD (necessarily on the same clusters) reads zeros. The "none"
// control shows that the test sees the leak the clear methods prevent.
func TestDNNewVDNeverSeesOldData(t *testing.T) {
	for _, tc := range []struct {
		clear string
		leaks bool
	}{{dnLvolClearMethod, false}, {"none", true}} {
		t.Run(tc.clear, func(t *testing.T) {
			e := newDNEnv(t)
			e.dn.lvolClear = tc.clear
			// 16 MiB malloc: 3 data clusters of 4 MiB, all of them the VD's.
			pd := nvmeof.NewID()
			old := vdSpec(nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1, 12)
			e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 16<<20, old)}})
			conn, err := e.dialVD(old, old.HostNqn)
			require.NoError(t, err)
			data := pattern(12<<20, 7)
			_, err = conn.WriteAt(1, data, 0)
			require.NoError(t, err)
			require.NoError(t, conn.Close())

			// The DA is deleted and another DA gets a VD on the same PD.
			next := vdSpec(nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1, 12)
			e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 16<<20, next)}})
			conn, err = e.dialVD(next, next.HostNqn)
			require.NoError(t, err)
			defer conn.Close()
			got := make([]byte, len(data))
			_, err = conn.ReadAt(1, got, 0)
			require.NoError(t, err)
			if tc.leaks {
				require.Equal(t, data, got, "with clear_method none the new tenant reads the old one's data")
			} else {
				require.True(t, bytes.Equal(make([]byte, len(got)), got), "the new VD reads zeros")
			}
		})
	}
}

// After a failover the old primary's connection to the VD is dropped before
// the new primary is admitted, and the data is still there for it.
func TestDNFenceDropsTheOldPrimary(t *testing.T) {
	e := newDNEnv(t)
	oldPrimary, newPrimary := nvmeof.NewID(), nvmeof.NewID()
	st := dnState(1, 1, nvmeof.NewID(), oldPrimary, 1)
	vd := st.Pds[0].Vds[0]
	e.syncOK(st)
	oldConn, err := e.dialVD(vd, vd.HostNqn)
	require.NoError(t, err)
	defer oldConn.Close()
	data := pattern(1<<20, 3)
	_, err = oldConn.WriteAt(1, data, 0)
	require.NoError(t, err)
	_, err = e.dialVD(vd, string(nvmeof.PrimaryHostNQN(newPrimary, 2)))
	require.ErrorIs(t, err, fabric.ErrNotAllowed, "only the primary is admitted")

	failover := proto.Clone(st).(*agentpb.DnState)
	failover.Pds[0].Vds[0].HostNqn, failover.Pds[0].Vds[0].Epoch = string(nvmeof.PrimaryHostNQN(newPrimary, 2)), 2
	e.syncOK(failover)
	select {
	case <-oldConn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the old primary is still connected")
	}
	_, err = oldConn.WriteAt(1, pattern(4096, 9), 0)
	require.Error(t, err, "the deposed primary cannot write")
	_, err = e.dialVD(vd, vd.HostNqn)
	require.ErrorIs(t, err, fabric.ErrNotAllowed, "nor reconnect")

	newConn, err := e.dialVD(vd, string(nvmeof.PrimaryHostNQN(newPrimary, 2)))
	require.NoError(t, err)
	defer newConn.Close()
	got := make([]byte, len(data))
	_, err = newConn.ReadAt(1, got, 0)
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// An aio PD keeps its lvstore, lvols and bytes across an spdk_tgt restart:
// the next sync examines the file and finds them (never creating a new
// lvstore, even when examine is slow).
func TestDNFindsAioPDAgainAfterRestart(t *testing.T) {
	e := newDNEnv(t, spdktest.WithExamineDelay(50*time.Millisecond))
	pd := aioPD(t, t.TempDir(), 64<<20, vdSpec(nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1, 16))
	st := &agentpb.DnState{Pds: []*agentpb.PdSpec{pd}}
	e.syncOK(st)
	vd := pd.Vds[0]
	conn, err := e.dialVD(vd, vd.HostNqn)
	require.NoError(t, err)
	data := pattern(2<<20, 5)
	_, err = conn.WriteAt(1, data, 4<<20)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	lvs := nvmeof.PDLvstoreName(pd.Id)
	before, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: lvs})
	require.NoError(t, err)

	e.restart()
	e.rec.reset()
	e.syncOK(st)
	e.requireConverged(st)
	for _, m := range e.rec.mutations() {
		require.NotEqual(t, "bdev_lvol_create_lvstore", m.Method)
		require.NotEqual(t, "bdev_lvol_create", m.Method)
	}
	after, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: lvs})
	require.NoError(t, err)
	require.Equal(t, before[0].UUID, after[0].UUID)
	conn, err = e.dialVD(vd, vd.HostNqn)
	require.NoError(t, err)
	defer conn.Close()
	got := make([]byte, len(data))
	_, err = conn.ReadAt(1, got, 4<<20)
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// A local NVMe device (trtype PCIe) is a PD like the others: attached under
// the PD's controller name, its lvstore found again after a restart, and
// detached when the PD goes.
func TestDNNVMePD(t *testing.T) {
	dev := spdktest.NVMeDevice{TrAddr: "0000:5e:00.0", Path: filepath.Join(t.TempDir(), "nvme.img"), SizeBytes: 64 << 20}
	e := newDNEnv(t, spdktest.WithNVMeDevice(dev))
	pd := &agentpb.PdSpec{Id: nvmeof.NewID(), Conf: &agentpb.PdSpec_Nvme{Nvme: &agentpb.NvmeConf{Traddr: "5E:00.0"}},
		Vds: []*agentpb.VdSpec{vdSpec(nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1, 8)}}
	st := &agentpb.DnState{Pds: []*agentpb.PdSpec{pd}}
	e.syncOK(st)
	e.requireConverged(st)
	ctrl := nvmeof.PDControllerName(pd.Id)
	var attach *recordedRPC
	for _, m := range e.rec.mutations() {
		if m.Method == "bdev_nvme_attach_controller" {
			attach = &m
		}
	}
	require.NotNil(t, attach)
	require.Equal(t, map[string]any{"name": ctrl, "trtype": "PCIe", "traddr": "5E:00.0"}, attach.Params)
	lvs := nvmeof.PDLvstoreName(pd.Id)
	before, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: lvs})
	require.NoError(t, err)

	e.fake.ResetCounts()
	e.syncOK(st)
	require.Empty(t, e.mutations())

	e.restart()
	e.syncOK(st)
	e.requireConverged(st)
	after, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: lvs})
	require.NoError(t, err)
	require.Equal(t, before[0].UUID, after[0].UUID, "found again on the device")

	// Another device under the same PD's name is not this PD.
	moved := proto.Clone(st).(*agentpb.DnState)
	moved.Pds[0].GetNvme().Traddr = "0000:5f:00.0"
	out := e.sync(moved)
	require.Contains(t, statusOf(t, out, agentpb.Kind_KIND_PD, pd.Id).Error, "not touching it")

	e.syncOK(&agentpb.DnState{})
	e.requireConverged(&agentpb.DnState{})
	ctrls, err := e.c.BdevNvmeGetControllers(context.Background(), spdk.BdevNvmeGetControllersParams{})
	require.NoError(t, err)
	require.Empty(t, ctrls)
}
