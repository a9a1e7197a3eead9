package devcluster_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

const hostNQN = "nqn.2016-06.io.spdk:host0"

// start runs a cluster on dir until the test ends (or stop is called),
// holding its nodes' ports in ports if not nil.
func start(t *testing.T, dir string, ports *devcluster.Ports) (*devcluster.Cluster, func()) {
	t.Helper()
	c, err := devcluster.New(devcluster.Config{DataDir: dir, AnyPorts: true, Ports: ports, Register: true, PDSizeBytes: 256 << 20,
		Failover: failover.Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: time.Second,
			SlowTimeout: 5 * time.Second, HoldDown: 10 * time.Second}})
	require.NoError(t, err)
	stopRun, err := c.Start(context.Background())
	require.NoError(t, err, "cluster did not start")
	stop := func() { require.NoError(t, stopRun()) }
	t.Cleanup(stop)
	return c, stop
}

// exported waits until every port of the exporter reports no error and its
// controller 0..n are healthy, and returns the exporter.
func exported(t *testing.T, api *vda.Cluster, primaryIdx int) vda.Exporter {
	t.Helper()
	var exp vda.Exporter
	require.EventuallyWithT(t, func(ct *assertT) {
		ctx := context.Background()
		da, err := api.GetDiskArray(ctx, "da0")
		if !ok(ct, err) {
			return
		}
		p, _ := da.Primary()
		if p.Idx != primaryIdx || da.Status.Part(p.ID).Health != vda.HealthHealthy {
			ct.Errorf("primary is controller %d (%s), want %d healthy", p.Idx, da.Status.Part(p.ID).Health, primaryIdx)
			return
		}
		exp, err = api.GetExporter(ctx, "da0", "exp0")
		if !ok(ct, err) {
			return
		}
		for _, port := range exp.Ports {
			if st := exp.Status.Part(port.ID); st.Health != vda.HealthHealthy && port.CntlrIdx == primaryIdx {
				ct.Errorf("port %d: %q %s", port.CntlrIdx, st.Health, st.ErrorMsg)
			}
		}
	}, 60*time.Second, 20*time.Millisecond)
	return exp
}

type assertT = assert.CollectT

func ok(ct *assertT, err error) bool {
	if err != nil {
		ct.Errorf("%v", err)
		return false
	}
	return true
}

func multipath(t *testing.T, exp vda.Exporter) *fabric.Multipath {
	t.Helper()
	var paths []fabric.TransportID
	for _, p := range exp.Ports {
		paths = append(paths, hostPath(p.CNListener))
	}
	o := fabric.DefaultMultipathOptions()
	o.RetryInterval = 10 * time.Millisecond
	m, err := fabric.NewMultipath(paths, exp.NQN, hostNQN, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// refusedAndHeld requires that connections to addr are refused and that
// no other socket can bind it.
func refusedAndHeld(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_ = c.Close()
	}
	require.ErrorIs(t, err, syscall.ECONNREFUSED, addr)
	_, err = net.Listen("tcp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE, addr)
}

// hostPath is a controller's listener as the host's fabric names it.
func hostPath(tid nvmeof.TransportID) fabric.TransportID {
	return fabric.TransportID{TrType: "TCP", AdrFam: "IPv4", TrAddr: tid.TrAddr, TrSvcID: tid.TrSvcID}
}

// TestFailoverAndRestart is the dev cluster end to end: a DA exported to a
// host that keeps writing while its primary's node dies; nothing
// acknowledged is lost, the old primary returns as a secondary, and a
// restart of the whole cluster on the same data directory finds the data.
func TestFailoverAndRestart(t *testing.T) {
	dir := t.TempDir()
	// The nodes' ports stay held from the first run to the second.
	ports := devcluster.NewPorts()
	t.Cleanup(func() { require.NoError(t, ports.Close()) })
	c, stop := start(t, dir, ports)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api := c.API()
	_, err := api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20,
		PhysicalSizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: hostNQN})
	require.NoError(t, err)
	exp := exported(t, api, 0)
	da, err := api.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	primary, _ := da.Primary()

	m := multipath(t, exp)
	ns, err := m.Namespace(ctx, 1)
	require.NoError(t, err)
	require.EqualValues(t, 32<<20, uint64(ns.BlockSize)*ns.NumBlocks, "the namespace is exactly --da-size")

	// The host writes while the primary's node dies.
	stopWrites := make(chan struct{})
	results := make(chan fabric.SeqResult, 1)
	errs := make(chan error, 1)
	go func() {
		res, err := fabric.RunSeq(ctx, m, fabric.SeqWorkload{NSID: 1, BlockSize: 4096, Blocks: 2048, Stop: stopWrites})
		results <- res
		errs <- err
	}()
	cn0 := c.Node(primary.CNName)
	require.NotNil(t, cn0)
	require.Eventually(t, func() bool { return m.Stats().IOs > 100 }, time.Minute, time.Millisecond)
	cn0.Kill()
	// A dead node refuses connections, and its ports stay its own.
	refusedAndHeld(t, cn0.Name())
	refusedAndHeld(t, net.JoinHostPort(cn0.Listener().TrAddr, cn0.Listener().TrSvcID))
	exported(t, api, 1)
	before := m.Stats().IOs
	require.Eventually(t, func() bool { return m.Stats().IOs > before+100 }, time.Minute, time.Millisecond,
		"writes resume through the new primary")
	close(stopWrites)
	res := <-results
	require.NoError(t, <-errs)
	require.NoError(t, fabric.VerifySeq(ctx, m, res))
	t.Logf("%d writes acknowledged, longest gap %v", res.Acked, res.MaxGap)

	// The old primary's node returns and serves again, as a secondary.
	require.NoError(t, cn0.Restart(ctx))
	require.EventuallyWithT(t, func(ct *assertT) {
		da, err := api.GetDiskArray(ctx, "da0")
		if !ok(ct, err) {
			return
		}
		for _, cn := range da.Cntlrs {
			if st := da.Status.Part(cn.ID); st.Health != vda.HealthHealthy {
				ct.Errorf("controller %d: %q %s", cn.Idx, st.Health, st.ErrorMsg)
			}
			if cn.CNName == cn0.Name() && cn.Primary {
				ct.Errorf("the returning node is primary again")
			}
		}
	}, time.Minute, 20*time.Millisecond)

	// The whole cluster restarts on the same data directory: the data is
	// still there.
	_ = m.Close()
	stop()
	for _, n := range c.Nodes() {
		refusedAndHeld(t, n.Name())
	}
	c2, _ := start(t, dir, ports)
	for i, n := range c2.Nodes() {
		require.Equal(t, c.Nodes()[i].Name(), n.Name(), "the same ports (ports.json)")
		require.Equal(t, c.Nodes()[i].Listener(), n.Listener())
	}
	exp2 := exported(t, c2.API(), 1)
	m2 := multipath(t, exp2)
	require.NoError(t, fabric.VerifySeq(ctx, m2, res))
}
