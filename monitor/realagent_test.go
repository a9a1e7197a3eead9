package monitor

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"github.com/vda-io/vda/store"
)

// realNode is a node as deployed: a real agent serving gRPC on 127.0.0.1
// in front of a fake spdk_tgt (agenttest.Node), and the test's own client
// of that SPDK.
type realNode struct {
	*agenttest.Node
	t    testing.TB
	spdk *spdk.Client
}

func newRealNode(t testing.TB, role agent.Role) *realNode {
	t.Helper()
	cfg := agenttest.Config{Role: role, GRPC: true, StateDir: t.TempDir()}
	if lvl := os.Getenv("VDA_TEST_LOG"); lvl != "" { // the nodes' logs beside the monitor's
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(lvl), Output: os.Stderr})
	}
	n := &realNode{Node: agenttest.StartNode(t, cfg), t: t}
	c, err := spdk.Dial(context.Background(), n.SPDK.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	n.spdk = c
	return n
}

// partition stops the agent only: the monitor cannot reach the node, but
// its SPDK keeps running (and keeps its connections to the DNs).
func (n *realNode) partition() { n.StopAgent() }

// kill stops the agent and crashes its SPDK.
func (n *realNode) kill() { n.Kill() }

// restart brings a killed node back: a fresh spdk_tgt and agent on the
// same addresses (the agent keeps its state dir).
func (n *realNode) restart() {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(n.t, n.Restart(ctx))
}

func (n *realNode) trid() fabric.TransportID {
	return fabric.TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: n.Listener.TrAddr, TrSvcID: n.Listener.TrSvcID}
}

// anaOptimized reports whether this node exports nqn with its listener
// ANA optimized (what a primary does).
// It reads the in-process fake's state, not nvmf_subsystem_get_listeners:
// BenchmarkFailover asks this of every pending DA about ten times a
// second, and those requests loaded the fake whose promotions it timed.
func (n *realNode) anaOptimized(nqn string) bool {
	_, ok := n.promotedAt(nqn)
	return ok
}

// promotedAt reads when the fake set the listener ANA optimized, so a
// benchmark's poll interval does not add to what it measures.
func (n *realNode) promotedAt(nqn string) (time.Time, bool) {
	states, since, ok := n.SPDK.ANAStatesSince(nqn)
	if !ok || len(states) != 1 || states[0] != string(spdk.ANAOptimized) {
		return time.Time{}, false
	}
	return since[0], true
}

// realCluster is a cluster of real agents on fake SPDKs.
type realCluster struct {
	t   testing.TB
	s   store.Store
	c   *vda.Cluster
	dns []*realNode
	cns []*realNode
}

func newRealCluster(t testing.TB, s store.Store, dns, cns int) *realCluster {
	t.Helper()
	return newRealClusterSized(t, s, dns, cns, 1<<30)
}

// newRealClusterSized has malloc PDs of pdBytes (sparse in the fake).
func newRealClusterSized(t testing.TB, s store.Store, dns, cns int, pdBytes uint64) *realCluster {
	t.Helper()
	ctx := context.Background()
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	rc := &realCluster{t: t, s: s, c: c}
	for i := 0; i < dns; i++ {
		n := newRealNode(t, agent.RoleDN)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: n.Addr, Listener: n.Listener, Location: fmt.Sprint("dn", i)})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: n.Addr, Name: "pd0",
			Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: pdBytes}})
		require.NoError(t, err)
		rc.dns = append(rc.dns, n)
	}
	for i := 0; i < cns; i++ {
		n := newRealNode(t, agent.RoleCN)
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: n.Addr, Listener: n.Listener, Location: fmt.Sprint("cn", i)})
		require.NoError(t, err)
		rc.cns = append(rc.cns, n)
	}
	return rc
}

const initiator = "nqn.2016-06.io.spdk:host0"

// createDA creates a DA of 32 MiB with an exporter exp0 to initiator.
func (rc *realCluster) createDA(name string, stripes, cntlrs int) vda.DiskArray {
	ctx := context.Background()
	_, err := rc.c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: name, CntlrCount: cntlrs, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: stripes, StripeSizeKB: 64}})
	require.NoError(rc.t, err)
	_, err = rc.c.CreateExporter(ctx, vda.ExporterSpec{DAName: name, Name: "exp0", InitiatorNQN: initiator})
	require.NoError(rc.t, err)
	return rc.da(name)
}

func (rc *realCluster) da(name string) vda.DiskArray {
	da, err := rc.c.GetDiskArray(context.Background(), name)
	require.NoError(rc.t, err)
	return da
}

func (rc *realCluster) node(name string) *realNode {
	for _, n := range append(append([]*realNode(nil), rc.dns...), rc.cns...) {
		if n.Addr == name {
			return n
		}
	}
	rc.t.Fatalf("no node %s", name)
	return nil
}

func expNQN(t testing.TB, da string) string {
	n, err := nvmeof.ExpNQN(da, "exp0")
	require.NoError(t, err)
	return string(n)
}

func spdkNQN(da string) spdk.NQNParams {
	n, _ := nvmeof.ExpNQN(da, "exp0")
	return spdk.NQNParams{NQN: string(n)}
}

// served reports whether the DA is initialized, exported by its primary
// with ANA optimized, and healthy in its status.
func (rc *realCluster) served(name string) bool {
	da, err := rc.c.GetDiskArray(context.Background(), name)
	if err != nil || !da.Initialized || da.Status.Health != vda.HealthHealthy {
		return false
	}
	// The exporter too: a sync that adds it sets the listener optimized
	// before it allows the host, and reports it once the host is in.
	exp, err := rc.c.GetExporter(context.Background(), name, "exp0")
	if err != nil || exp.Status.Health != vda.HealthHealthy {
		return false
	}
	p, _ := da.Primary()
	return rc.node(p.CNName).anaOptimized(expNQN(rc.t, name))
}

// dialExport connects the initiator to DA name's export on node n.
func (rc *realCluster) dialExport(n *realNode, name string) (*fabric.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := fabric.Dial(ctx, n.trid(), expNQN(rc.t, name), initiator)
	if err == nil {
		rc.t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, err
}
