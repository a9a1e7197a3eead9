package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// aioPD is a desired aio PD on a new sparse file of size bytes in dir.
func aioPD(t *testing.T, dir string, size int64, vds ...*agentpb.VdSpec) *agentpb.PdSpec {
	t.Helper()
	id := nvmeof.NewID()
	path := filepath.Join(dir, id+".img")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.NoError(t, os.Truncate(path, size))
	return &agentpb.PdSpec{Id: id, Conf: &agentpb.PdSpec_Aio{Aio: &agentpb.AioConf{Filename: path}}, Vds: vds}
}

func failures(out []*agentpb.ObjectStatus) []*agentpb.ObjectStatus {
	var f []*agentpb.ObjectStatus
	for _, o := range out {
		if !o.GetOk() {
			f = append(f, o)
		}
	}
	return f
}

func TestDNSPDKRestartMidSyncConverges(t *testing.T) {
	e := newDNEnv(t)
	da, cntlr := nvmeof.NewID(), nvmeof.NewID()
	st := dnState(1, 2, da, cntlr, 1)
	st.Pds = append(st.Pds, aioPD(t, t.TempDir(), 64<<20, vdSpec(nvmeof.NewID(), da, cntlr, 1, 8)))
	e.syncOK(st)
	aioLvs := nvmeof.PDLvstoreName(st.Pds[1].Id)
	before, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: aioLvs})
	require.NoError(t, err)

	// More VDs; spdk_tgt dies while the sync is adding their namespaces.
	more := proto.Clone(st).(*agentpb.DnState)
	for _, pd := range more.Pds {
		pd.Vds = append(pd.Vds, vdSpec(nvmeof.NewID(), da, cntlr, 1, 8), vdSpec(nvmeof.NewID(), da, cntlr, 1, 8))
	}
	e.fake.ResetCounts()
	e.fake.Inject("nvmf_subsystem_add_ns", spdktest.Fault{Hang: true, Times: 1})
	done := make(chan []*agentpb.ObjectStatus)
	go func() { done <- e.sync(more) }()
	require.Eventually(t, func() bool { return e.fake.RPCCount("nvmf_subsystem_add_ns") > 0 }, 10*time.Second, time.Millisecond)
	e.restart()
	require.NotEmpty(t, failures(<-done), "the interrupted sync reports what it could not do")

	e.syncOK(more)
	e.requireConverged(more)
	after, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: aioLvs})
	require.NoError(t, err)
	require.Equal(t, before[0].UUID, after[0].UUID, "the aio PD's lvstore was found again, not created")
	e.fake.ResetCounts()
	e.syncOK(more)
	require.Empty(t, e.mutations())
}

func TestDNLostRepliesConverge(t *testing.T) {
	creates := []string{"nvmf_create_transport", "bdev_malloc_create", "bdev_examine", "bdev_lvol_create_lvstore",
		"bdev_lvol_create", "nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_listener", "nvmf_subsystem_add_host"}
	deletes := []string{"nvmf_delete_subsystem", "bdev_lvol_delete", "bdev_lvol_delete_lvstore", "bdev_malloc_delete"}
	for _, m := range append(creates, deletes...) {
		t.Run(m, func(t *testing.T) {
			e := newDNEnv(t)
			target := dnState(2, 2, nvmeof.NewID(), nvmeof.NewID(), 1)
			if slices.Contains(deletes, m) {
				e.syncOK(target)
				target = &agentpb.DnState{}
			}
			// The method runs but its reply is lost with the connection.
			e.fake.ResetCounts()
			e.fake.Inject(m, spdktest.Fault{DropReply: true, Times: 1})
			out := e.sync(target)
			require.Positive(t, e.fake.RPCCount(m), "the fault fired")
			require.NotEmpty(t, failures(out), "the lost reply is reported")
			// A create whose reply was lost may still be running (SPDK
			// writes an lvstore in the background and refuses its name
			// with -17 meanwhile, as the fake does): the next syncs converge.
			require.Eventually(t, func() bool { return len(failures(e.sync(target))) == 0 },
				time.Minute, 10*time.Millisecond, "the syncs after the lost reply converge")
			e.requireConverged(target)
			e.fake.ResetCounts()
			e.syncOK(target)
			require.Empty(t, e.mutations(), "converged: nothing left to do")
		})
	}
}

func TestDNHangIsBoundedByTheContext(t *testing.T) {
	e := newDNEnv(t)
	st := dnState(1, 3, nvmeof.NewID(), nvmeof.NewID(), 1)
	e.fake.Inject("bdev_lvol_create", spdktest.Fault{Hang: true})
	// The sync's context ends once the fake holds the first lvol create
	// (not after a fixed time: on a busy machine the PD alone took longer).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for e.fake.RPCCount("bdev_lvol_create") == 0 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	out := e.dn.sync(ctx, st)
	require.True(t, statusOf(t, out, agentpb.Kind_KIND_PD, st.Pds[0].Id).Ok, "the PD was made before the hang")
	for _, vd := range st.Pds[0].Vds {
		s := statusOf(t, out, agentpb.Kind_KIND_VD, vd.Id)
		require.False(t, s.Ok)
		require.Contains(t, s.Error, "context canceled")
	}
	// A hung spdk_tgt gets restarted; the next sync converges.
	e.fake.ClearFaults()
	e.restart()
	e.syncOK(st)
	e.requireConverged(st)
}

func TestDNSPDKDownFailsEveryObject(t *testing.T) {
	e := newDNEnv(t)
	st := dnState(1, 2, nvmeof.NewID(), nvmeof.NewID(), 1)
	e.fake.Crash()
	out := e.sync(st)
	require.Len(t, out, 3)
	for _, o := range out {
		require.False(t, o.Ok)
		require.Contains(t, o.Error, "listing SPDK objects")
	}
	require.NoError(t, e.fake.Restart(true))
	e.initFramework()
	e.syncOK(st)
	e.requireConverged(st)
}

func TestDNWithAutoExamine(t *testing.T) {
	// An spdk_tgt started without bdev_set_options -d examines every bdev
	// itself and refuses bdev_examine (-22): the lvstore is still found.
	e := newDNEnv(t)
	da, cntlr := nvmeof.NewID(), nvmeof.NewID()
	st := &agentpb.DnState{Pds: []*agentpb.PdSpec{aioPD(t, t.TempDir(), 64<<20, vdSpec(nvmeof.NewID(), da, cntlr, 1, 8))}}
	e.syncOK(st)
	lvs := nvmeof.PDLvstoreName(st.Pds[0].Id)
	before, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: lvs})
	require.NoError(t, err)
	require.NoError(t, e.fake.Restart(false))
	e.syncOK(st)
	e.requireConverged(st)
	after, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: lvs})
	require.NoError(t, err)
	require.Equal(t, before[0].UUID, after[0].UUID)
}
