package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/spdkproc"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/nvmeof/nvmetcp"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// TestCNSnapshotsOnRealSPDK runs the snapshot and clone reconciler on two
// real spdk_tgt v24.01 (controller 0, the primary, alone on one; the disk
// node and controller 1 on the other: a primary cannot share an SPDK with
// the disk node, whose VD lvols carry the UUIDs of the namespaces it
// attaches), each in a network namespace of the test's, with a host in a
// third: a snapshot taken under host writes, the primary's spdk_tgt killed
// and started again (the primary re-assembles the array from the VDs, as a
// promoted secondary does, and must find the snapshot in its lvstore), the
// snapshot exported read-only and read back bit-exact through both
// controllers, a clone written while the snapshot stays unchanged, and an
// inflate. It logs what each step's sync took.
//
// It busy-polls two cores, so it runs only with VDA_REAL_AGENT=1 (set by
// scripts/test's real-SPDK step, which runs alone), and needs
// $VDA_SPDK_DIR, root and ip netns (it skips without them).
func TestCNSnapshotsOnRealSPDK(t *testing.T) {
	if os.Getenv("VDA_REAL_AGENT") != "1" {
		t.Skip("set VDA_REAL_AGENT=1 (and VDA_SPDK_DIR) to run the agent on real SPDK; scripts/test does in its real-SPDK step")
	}
	spdkproc.Require(t)
	if err := netnstest.Available(); err != nil {
		if spdkproc.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	net := netnstest.New(t)
	ha, hb, hh := net.AddHost("a", "10.77.3.1/24"), net.AddHost("b", "10.77.3.2/24"), net.AddHost("h", "10.77.3.3/24")
	dir, err := os.MkdirTemp("", "vdasnap")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var tga *spdkproc.Target
	start := func(h *netnstest.Host, name, mask string) (*spdk.Client, *spdkproc.Target) {
		tg := spdkproc.StartT(t, spdkproc.Config{Name: name, Socket: filepath.Join(dir, name+".sock"), CPUMask: mask,
			Command: h.Command})
		c, err := spdk.Dial(context.Background(), tg.Socket())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c, tg
	}
	ca, tga := start(ha, "a", "0x1")
	cb, _ := start(hb, "b", "0x2")
	tid := func(ip, port string) nvmeof.TransportID {
		x, err := nvmeof.NewTransportID("tcp", "ipv4", ip, port)
		require.NoError(t, err)
		return x
	}
	env := func(c *spdk.Client, l nvmeof.TransportID) *cnNodeEnv {
		return &cnNodeEnv{t: t, c: c, listener: l, cn: newCNNode(c, l, nil)}
	}
	dn := env(cb, tid(hb.IP, "4420"))
	dn.dn = newDNNode(cb, dn.listener, nil)
	cl := &cnCluster{t: t, dns: []*cnNodeEnv{dn}, cns: []*cnNodeEnv{env(ca, tid(ha.IP, "4430")), env(cb, tid(hb.IP, "4430"))},
		daID: nvmeof.NewID(), expID: nvmeof.NewID(), initiator: cnTestInitiator, epoch: 1, down: map[int]bool{},
		pds: []string{nvmeof.NewID()}, vds: []string{nvmeof.NewID(), nvmeof.NewID()}}
	for range cl.cns {
		cl.cntlrs, cl.ports = append(cl.cntlrs, nvmeof.NewID()), append(cl.ports, nvmeof.NewID())
	}
	cl.nqn, err = nvmeof.ExpNQN("da0", "exp0")
	require.NoError(t, err)
	// One malloc PD holds both VDs (the fixture's dnState puts them on
	// one PD of one disk node, too small here).
	syncDN := func() {
		pd := &agentpb.PdSpec{Id: cl.pds[0], Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: 80 << 20}}}
		for _, vd := range cl.vds {
			pd.Vds = append(pd.Vds, &agentpb.VdSpec{Id: vd, DaId: cl.daID, Epoch: cl.epoch, SizeBytes: cnTestVDBytes,
				HostNqn: string(nvmeof.PrimaryHostNQN(cl.cntlrs[cl.primary], uint64(cl.epoch)))})
		}
		dn.syncDNOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{pd}})
	}
	syncDN()
	v := &cnVols{}
	out := cl.cns[0].syncCN(v.state(cl, 0))
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0]).GetDaInitialized(), "%v", out)
	cl.initialized = true
	v.syncAll(cl)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	open := func(nqn nvmeof.NQN, idx ...int) *nvmetcp.Multipath {
		var paths []string
		for _, i := range idx {
			paths = append(paths, cl.cns[i].listener.TrAddr+":"+cl.cns[i].listener.TrSvcID)
		}
		m, err := nvmetcp.NewMultipath(paths, string(nqn), nvmetcp.MultipathOptions{Options: nvmetcp.Options{
			HostNQN: string(cl.initiator), Dial: hh.DialContext, CommandTimeout: 5 * time.Second}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}
	const off = 16 << 20 // past the ring the load writes
	h := open(cl.nqn, 0, 1)
	before := bytes.Repeat([]byte("snapshot-before!"), (1<<20)/16)
	require.NoError(t, h.WriteAt(ctx, 1, before, off))

	// The snapshot under host writes.
	stop := make(chan struct{})
	done := make(chan error, 1)
	var res fabric.SeqResult
	go func() {
		var err error
		res, err = fabric.RunSeq(ctx, h, fabric.SeqWorkload{NSID: 1, BlockSize: 4096, Blocks: 2048, Stop: stop})
		done <- err
	}()
	snapID := nvmeof.NewID()
	v.snaps = []string{snapID}
	t0 := time.Now()
	out = cl.cns[0].syncCNOK(v.state(cl, 0))
	t.Logf("sync taking a snapshot: %v", time.Since(t0))
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_SNAP, snapID).GetOk())
	close(stop)
	require.NoError(t, <-done)
	require.NoError(t, fabric.VerifySeq(ctx, h, res))
	after := bytes.Repeat([]byte("volume-moved-on!"), (1<<20)/16)
	require.NoError(t, h.WriteAt(ctx, 1, after, off))

	// The primary's spdk_tgt dies (kill -9) and starts again, empty: the
	// primary re-assembles the array and finds the snapshot.
	alias := nvmeof.LvolAlias(nvmeof.DALvstoreName(cl.daID), nvmeof.SnapLvolName(snapID))
	uuid := cl.cns[0].lvolBdev(alias).UUID
	_ = tga.Kill() // "signal: killed"
	ca, _ = start(ha, "a2", "0x1")
	cl.cns[0] = env(ca, cl.cns[0].listener)
	t0 = time.Now()
	require.Eventually(t, func() bool {
		out = cl.cns[0].syncCN(v.state(cl, 0))
		return cnStatus(t, out, agentpb.Kind_KIND_SNAP, snapID).GetOk()
	}, 2*time.Minute, 100*time.Millisecond, "%v", out)
	t.Logf("re-assembly finding the snapshot: %v", time.Since(t0))
	require.Equal(t, uuid, cl.cns[0].lvolBdev(alias).UUID, "found again, not taken again")
	v.syncAll(cl)

	// Export it read-only; bit-exact through both controllers.
	sx := newCNVolExp(t, cl, "snapexp", snapID, "")
	v.exps = append(v.exps, sx)
	v.syncAll(cl)
	got := make([]byte, len(before))
	for _, idx := range [][]int{{0}, {1}} {
		sm := open(sx.nqn, idx...)
		require.NoError(t, sm.ReadAt(ctx, 1, got, off))
		require.True(t, bytes.Equal(before, got), "through controller %v", idx)
	}
	sm := open(sx.nqn, 0)
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	err = sm.WriteAt(wctx, 1, after[:4096], off)
	wcancel()
	require.Error(t, err, "a snapshot is read-only")
	t.Logf("a write to the exported snapshot: %v", err)
	require.NoError(t, h.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(after, got))
	require.NoError(t, fabric.VerifySeq(ctx, h, res))

	// A clone, exported and written; the snapshot is unchanged; inflated.
	cloneID := nvmeof.NewID()
	clone := &agentpb.CloneSpec{Id: cloneID, SnapId: snapID}
	v.clones = []*agentpb.CloneSpec{clone}
	t0 = time.Now()
	cl.cns[0].syncCNOK(v.state(cl, 0))
	t.Logf("sync making a clone: %v", time.Since(t0))
	cx := newCNVolExp(t, cl, "cloneexp", "", cloneID)
	v.exps = append(v.exps, cx)
	v.syncAll(cl)
	cm := open(cx.nqn, 0, 1)
	mine := bytes.Repeat([]byte("the clone's own!"), (1<<20)/16)
	require.NoError(t, cm.WriteAt(ctx, 1, mine, off))
	require.NoError(t, sm.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(before, got), "the snapshot is unchanged by its clone's writes")
	clone.Inflate, clone.SizeBytes = true, 2*cnTestDABytes
	t0 = time.Now()
	cl.cns[0].syncCNOK(v.state(cl, 0))
	t.Logf("sync inflating and growing a clone: %v", time.Since(t0))
	b := cl.cns[0].lvolBdev(nvmeof.LvolAlias(nvmeof.DALvstoreName(cl.daID), nvmeof.CloneLvolName(cloneID)))
	require.False(t, b.DriverSpecific.Lvol.Clone)
	require.Equal(t, uint64(2*cnTestDABytes), b.SizeBytes())
	require.NoError(t, cm.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(mine, got))

	// Dropped: exporters, clone and snapshot go; the volume stays.
	v.exps, v.clones, v.snaps = nil, nil, nil
	v.syncAll(cl)
	require.Nil(t, cl.cns[0].lvolBdev(alias))
	require.NoError(t, h.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(after, got))
}
