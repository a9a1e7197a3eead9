package agent

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// dnEnv is a fake spdk_tgt set up as the tutorial does (--wait-for-rpc,
// bdev_set_options -d, framework_start_init), a client of it and a disk
// node reconciler with a listener on a port reserved for the fake.
type dnEnv struct {
	t        testing.TB
	fake     *spdktest.Server
	rec      *rpcRecorder // every request the agent's client sends
	c        *spdk.Client
	listener nvmeof.TransportID
	dn       *dnNode
}

func newDNEnv(t testing.TB, opts ...spdktest.Option) *dnEnv {
	t.Helper()
	return newDNEnvRecorded(t, true, opts...)
}

// newDNEnvRecorded is newDNEnv, with the recording proxy only if record.
func newDNEnvRecorded(t testing.TB, record bool, opts ...spdktest.Option) *dnEnv {
	t.Helper()
	fake := spdktest.NewServer(t, append([]spdktest.Option{spdktest.WithWaitForRPC()}, opts...)...)
	sock := fake.SockPath()
	var rec *rpcRecorder
	if record {
		rec = startRecorder(t, fake.SockPath())
		sock = rec.sock
	}
	c, err := spdk.Dial(context.Background(), sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	e := &dnEnv{t: t, fake: fake, rec: rec, c: c, listener: testListener(t, fake)}
	e.initFramework()
	e.dn = newDNNode(c, e.listener, nil)
	// aio PDs live in the tests' temporary directories, and the fake
	// SPDK's lvstores are recognised as the PDs' own.
	e.dn.aio = aioPolicy{dirs: []string{os.TempDir()}, labels: []LvstoreLabelReader{SPDKLvstoreLabel, blockdev.LvstoreName}}
	return e
}

// initFramework runs the tutorial's start-up RPCs (after a Restart too),
// on a connection of its own as rpc.py would.
func (e *dnEnv) initFramework() {
	e.t.Helper()
	ctx := context.Background()
	c, err := spdk.Dial(ctx, e.fake.SockPath())
	require.NoError(e.t, err)
	defer c.Close()
	require.NoError(e.t, c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: new(false)}))
	require.NoError(e.t, c.FrameworkStartInit(ctx))
	require.NoError(e.t, c.FrameworkWaitInit(ctx))
}

// restart simulates kill -9 of spdk_tgt and starts it again.
func (e *dnEnv) restart() {
	e.t.Helper()
	require.NoError(e.t, e.fake.Restart(true))
	e.initFramework()
}

// testListener reserves a TCP listener address on a free local port for
// fake's NVMe-oF listeners: the fake listens there when the agent adds the
// listener, and the port stays taken until the test ends (also while the
// fake is crashed), so no other process can take it in between.
func testListener(t testing.TB, fake *spdktest.Server) nvmeof.TransportID {
	t.Helper()
	trid, err := fake.Reserve("127.0.0.1")
	require.NoError(t, err)
	tid, err := nvmeof.NewTransportID(trid.TrType, trid.AdrFam, trid.TrAddr, trid.TrSvcID)
	require.NoError(t, err)
	return tid
}

func (e *dnEnv) sync(st *agentpb.DnState) []*agentpb.ObjectStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.dn.sync(ctx, st)
}

// syncOK syncs st and requires every object to be OK.
func (e *dnEnv) syncOK(st *agentpb.DnState) []*agentpb.ObjectStatus {
	e.t.Helper()
	out := e.sync(st)
	for _, o := range out {
		require.True(e.t, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
	return out
}

// mallocPD is a desired malloc PD of size bytes with vds.
func mallocPD(id string, size uint64, vds ...*agentpb.VdSpec) *agentpb.PdSpec {
	return &agentpb.PdSpec{Id: id, Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: size}}, Vds: vds}
}

// vdSpec is a desired VD of size MiB, admitting cntlr as primary at epoch.
func vdSpec(id, daID, cntlr string, epoch int64, sizeMiB uint64) *agentpb.VdSpec {
	return &agentpb.VdSpec{Id: id, DaId: daID, Epoch: epoch, SizeBytes: sizeMiB << 20, HostNqn: string(nvmeof.PrimaryHostNQN(cntlr, uint64(epoch)))}
}

// statusOf finds the status of kind and id.
func statusOf(t testing.TB, out []*agentpb.ObjectStatus, kind agentpb.Kind, id string) *agentpb.ObjectStatus {
	t.Helper()
	for _, o := range out {
		if o.GetKind() == kind && o.GetId() == id {
			return o
		}
	}
	require.Failf(t, "no status", "%s %s in %v", kind, id, out)
	return nil
}

// subsystem returns the subsystem nqn as SPDK lists it, or nil.
func (e *dnEnv) subsystem(nqn nvmeof.NQN) *spdk.Subsystem {
	e.t.Helper()
	subs, err := e.c.NvmfGetSubsystems(context.Background(), spdk.NvmfGetSubsystemsParams{})
	require.NoError(e.t, err)
	for i := range subs {
		if subs[i].NQN == string(nqn) {
			return &subs[i]
		}
	}
	return nil
}

// mutations returns the state-changing methods the fake received since the
// last ResetCounts.
func (e *dnEnv) mutations() []string {
	var out []string
	for _, m := range e.fake.CalledMethods() {
		if !spdk.IsReadOnly(m) {
			out = append(out, m)
		}
	}
	return out
}

// requireConverged checks that SPDK holds exactly the DN objects st wants,
// built to the recipe, and no other owned object (no orphans).
func (e *dnEnv) requireConverged(st *agentpb.DnState) {
	e.t.Helper()
	t := e.t
	snap, err := e.dn.list(context.Background())
	require.NoError(t, err)
	bdevs, lvstores, lvols, subs := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[nvmeof.NQN]bool{}
	for _, pd := range st.GetPds() {
		bdev := nvmeof.PDBdevName(pd.GetId())
		if pd.GetNvme() != nil {
			bdev = nvmeof.NVMeBdevName(nvmeof.PDControllerName(pd.GetId()), 1)
		}
		require.NotNil(t, snap.bdev(bdev), "PD bdev %s", bdev)
		bdevs[bdev] = true
		lvs := nvmeof.PDLvstoreName(pd.GetId())
		require.Contains(t, snap.lvstores, lvs)
		require.Equal(t, bdev, snap.lvstores[lvs].BaseBdev)
		lvstores[lvs] = true
		for _, vd := range pd.GetVds() {
			alias := nvmeof.LvolAlias(lvs, nvmeof.VDLvolName(vd.GetId()))
			lv, ok := snap.lvols[alias]
			require.True(t, ok, "lvol %s", alias)
			require.False(t, lv.IsThinProvisioned, "VD lvols are thick")
			require.Equal(t, vd.GetSizeBytes(), snap.bdevs[lv.UUID].SizeBytes())
			lvols[alias] = true
			nqn := nvmeof.VDNQN(vd.GetId())
			subs[nqn] = true
			ss := snap.subsystems[nqn]
			require.NotNil(t, ss, "subsystem %s", nqn)
			require.False(t, ss.AllowAnyHost)
			require.Equal(t, nvmeof.SerialNumber(nqn), ss.SerialNumber)
			require.Equal(t, nvmeof.ModelNumber, ss.ModelNumber)
			require.Equal(t, []spdk.SubsystemHost{{NQN: vd.GetHostNqn()}}, ss.Hosts)
			require.Len(t, ss.Namespaces, 1)
			require.Equal(t, lv.UUID, ss.Namespaces[0].BdevName)
			require.Equal(t, nvmeof.NamespaceUUID(nqn), ss.Namespaces[0].UUID)
			require.Len(t, ss.ListenAddresses, 1)
			l := ss.ListenAddresses[0]
			tid, err := nvmeof.NewTransportID(l.TRType, l.AdrFam, l.TRAddr, l.TRSvcID)
			require.NoError(t, err)
			require.Equal(t, e.listener, tid)
		}
	}
	for name, b := range snap.bdevs {
		if b.Name == name && (ownedID(name, nvmeof.KindPDBdev) != "" || ownedID(name, nvmeof.KindPDController) != "") {
			require.True(t, bdevs[name], "orphan bdev %s", name)
		}
	}
	for name := range snap.ctrlrs {
		if ownedID(name, nvmeof.KindPDController) != "" {
			require.True(t, bdevs[nvmeof.NVMeBdevName(name, 1)], "orphan controller %s", name)
		}
	}
	for name := range snap.lvstores {
		if nvmeof.IsOwnedLvstore(name) {
			require.True(t, lvstores[name], "orphan lvstore %s", name)
		}
	}
	for alias, lv := range snap.lvols {
		if nvmeof.IsOwnedLvol(lv.Name) {
			require.True(t, lvols[alias], "orphan lvol %s", alias)
		}
	}
	for nqn := range snap.subsystems {
		if nvmeof.IsOwnedNQN(nqn) {
			require.True(t, subs[nqn], "orphan subsystem %s", nqn)
		}
	}
}

// dnState builds a state of npd malloc PDs of 128 MiB with nvd VDs of 8
// MiB each, all of one DA exported to cntlr.
func dnState(npd, nvd int, da, cntlr string, epoch int64) *agentpb.DnState {
	st := &agentpb.DnState{}
	for range npd {
		pd := mallocPD(nvmeof.NewID(), 128<<20)
		for range nvd {
			pd.Vds = append(pd.Vds, vdSpec(nvmeof.NewID(), da, cntlr, epoch, 8))
		}
		st.Pds = append(st.Pds, pd)
	}
	return st
}

// spdktestError is a fault answering an SPDK error the next times requests.
func spdktestError(code int, msg string, times int) spdktest.Fault {
	return spdktest.Fault{Error: &spdktest.Error{Code: code, Message: msg}, Times: times}
}

// mutationCalls counts the state-changing requests the fake received since
// the last ResetCounts, by method.
func (e *dnEnv) mutationCalls() map[string]int {
	out := map[string]int{}
	for _, m := range e.mutations() {
		out[m] = e.fake.RPCCount(m)
	}
	return out
}

// failedStatuses returns the statuses of out that are not ok.
func failedStatuses(out []*agentpb.ObjectStatus) []*agentpb.ObjectStatus {
	var failed []*agentpb.ObjectStatus
	for _, o := range out {
		if !o.Ok {
			failed = append(failed, o)
		}
	}
	return failed
}
