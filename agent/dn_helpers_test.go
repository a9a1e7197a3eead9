package agent

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// dnEnv is a fake spdk_tgt set up as the tutorial does (--wait-for-rpc,
// bdev_set_options -d, framework_start_init), a client of it and a disk
// node reconciler with a listener on a free local port.
type dnEnv struct {
	t        testing.TB
	fake     *spdktest.Server
	c        *spdk.Client
	listener nvmeof.TransportID
	dn       *dnNode
}

func newDNEnv(t testing.TB, opts ...spdktest.Option) *dnEnv {
	t.Helper()
	fake := spdktest.NewServer(t, append([]spdktest.Option{spdktest.WithWaitForRPC()}, opts...)...)
	c, err := spdk.Dial(context.Background(), fake.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	e := &dnEnv{t: t, fake: fake, c: c, listener: dnTestListener(t)}
	e.initFramework()
	e.dn = newDNNode(c, e.listener, nil)
	return e
}

// initFramework runs the tutorial's start-up RPCs (after a Restart too).
func (e *dnEnv) initFramework() {
	e.t.Helper()
	ctx := context.Background()
	require.NoError(e.t, e.c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: new(false)}))
	require.NoError(e.t, e.c.FrameworkStartInit(ctx))
	require.NoError(e.t, e.c.FrameworkWaitInit(ctx))
}

// restart simulates kill -9 of spdk_tgt and starts it again.
func (e *dnEnv) restart() {
	e.t.Helper()
	require.NoError(e.t, e.fake.Restart(true))
	e.initFramework()
}

// dnTestListener returns a TCP listener address on a free local port.
func dnTestListener(t testing.TB) nvmeof.TransportID {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, ln.Close())
	tid, err := nvmeof.NewTransportID("tcp", "ipv4", "127.0.0.1", port)
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

// vdSpec is a desired VD of size MiB, admitting the host NQN of cntlr.
func vdSpec(id, daID, cntlr string, epoch int64, sizeMiB uint64) *agentpb.VdSpec {
	return &agentpb.VdSpec{Id: id, DaId: daID, Epoch: epoch, SizeBytes: sizeMiB << 20, HostNqn: string(nvmeof.HostNQN(cntlr))}
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
