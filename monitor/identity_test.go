package monitor

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// aliasDialer makes the monitor reach aliases' targets when it dials an
// alias: a second name (another IP, another spelling) of one server.
func aliasDialer(aliases map[string]string) grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		if to, ok := aliases[addr]; ok {
			addr = to
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	})
}

// aliasOf is another name of the agent at addr: the same port on 127.0.0.2.
func aliasOf(t testing.TB, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.2", port)
}

// addDN registers a disk node with a malloc PD, as `dn create` and
// `pd create` do. Each gets a listener of its own (nodes cannot share
// one); nothing listens there.
func addDN(t testing.TB, c *vda.Cluster, name string) vda.DiskNode {
	ctx := context.Background()
	port := strconv.Itoa(4420 + int(addedDNs.Add(1)))
	dn, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: name, Listener: listener("10.0.0.99", port)})
	require.NoError(t, err)
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: name, Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: fakePDBytes}})
	require.NoError(t, err)
	return dn
}

var addedDNs atomic.Int32

func dnError(t testing.TB, c *vda.Cluster, name string) string {
	dn, err := c.GetDiskNode(context.Background(), name)
	require.NoError(t, err)
	return dn.Status.ErrorMsg
}

// neverSyncedAs fails if a received a Sync for node id.
func neverSyncedAs(t testing.TB, a *agenttest.Fake, id string) {
	t.Helper()
	for _, r := range a.Records() {
		require.NotEqual(t, id, r.Req.GetNodeId(), "the agent got a Sync meant for node %s", id)
	}
}

// A node registered a second time under an alias (a name that reaches the
// same agent) is never synced: its empty state would wipe the first
// node's disks. Its status names the node whose agent it reaches.
func TestAliasOfABoundNodeIsNeverSynced(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 1)
	tc.createDA("da0", 1, 1)
	real := tc.dns[0]
	alias := aliasOf(t, real.Addr)
	cfg := testConfig(s, "m0")
	cfg.ResyncInterval = 50 * time.Millisecond // many forced pushes
	cfg.DialOptions = append(cfg.DialOptions, aliasDialer(map[string]string{alias: real.Addr}))
	startMonitor(t, cfg)
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	bound := real.LastApplied().GetAgentId()
	require.Equal(t, real.AgentID(), bound)

	aliasDN := addDN(t, tc.c, alias)
	eventually(t, func() bool {
		return strings.Contains(dnError(t, tc.c, alias), "address "+alias+" reaches the agent of node "+real.Addr)
	}, wait, 5*time.Millisecond, "last: %s", dnError(t, tc.c, alias))
	n := len(real.Records())
	eventually(t, func() bool { return len(real.Records()) >= n+5 }, wait, 5*time.Millisecond, "resyncs go on")
	neverSyncedAs(t, real, aliasDN.ID)
	require.True(t, tc.converged(real), "the real node keeps its state")
	require.NotEmpty(t, real.LastApplied().GetDn().GetPds())
	require.Empty(t, dnError(t, tc.c, real.Addr))
}

// An agent whose ID changed (state dir lost, machine replaced) is not
// driven until an operator unbinds its node; then the monitor binds the
// node to the new agent and drives it again.
func TestChangedAgentIsDrivenOnlyAfterUnbind(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 0)
	a := tc.dns[0]
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool { return tc.converged(a) }, wait, 5*time.Millisecond)
	old := a.AgentID()
	n := len(a.Records())

	replaced := agent.NewAgentID()
	a.SetAgentID(replaced)
	a.Restart("i1") // a restarted node is pushed again at once
	eventually(t, func() bool {
		msg := dnError(t, tc.c, a.Addr)
		return strings.Contains(msg, "is agent "+replaced) && strings.Contains(msg, "bound to agent "+old) &&
			strings.Contains(msg, "vda dn unbind --dn-name "+a.Addr)
	}, wait, 5*time.Millisecond, "last: %s", dnError(t, tc.c, a.Addr))
	for _, r := range a.Records()[n:] {
		require.Equal(t, old, r.Req.GetAgentId(), "the monitor never switched agents by itself")
	}

	b, err := tc.c.UnbindDiskNode(context.Background(), a.Addr)
	require.NoError(t, err)
	require.Equal(t, old, b.AgentID)
	eventually(t, func() bool {
		return tc.converged(a) && a.LastApplied().GetAgentId() == replaced && dnError(t, tc.c, a.Addr) == ""
	}, wait, 5*time.Millisecond)
}

func TestBindIsCreateOnly(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t)
	tc := newTestCluster(t, s, 3, 0)
	m, err := New(testConfig(s, "m0"))
	require.NoError(t, err)
	plan := func() map[string]*NodePlan {
		snap, err := LoadSnapshot(ctx, s)
		require.NoError(t, err)
		out := map[string]*NodePlan{}
		for _, np := range Build(snap).Nodes {
			out[np.Name] = np
		}
		return out
	}
	p := plan()
	a, b, c := p[tc.dns[0].Addr], p[tc.dns[1].Addr], p[tc.dns[2].Addr]
	x, y, z := agent.NewAgentID(), agent.NewAgentID(), agent.NewAgentID()
	require.NoError(t, m.bind(ctx, a, x))
	require.NoError(t, m.bind(ctx, a, x), "binding again to the same agent is a no-op")
	err = m.bind(ctx, b, x)
	require.ErrorIs(t, err, ErrIdentity)
	require.ErrorContains(t, err, "reaches the agent of node "+a.Name)
	err = m.bind(ctx, a, y)
	require.ErrorIs(t, err, ErrIdentity)
	require.ErrorContains(t, err, "unbind")

	p = plan()
	require.Equal(t, x, p[a.Name].AgentID)
	require.Equal(t, x, p[a.Name].Request.GetAgentId())
	require.Equal(t, a.Name, p[a.Name].Request.GetNodeName())
	require.Equal(t, p[a.Name].Request.GetGeneration(), p[a.Name].Request.GetStoreRevision())
	require.Empty(t, p[b.Name].AgentID)

	// A deleted node's binding goes with it: its agent may serve another.
	require.NoError(t, tc.c.DeletePhysicalDisk(ctx, a.Name, "pd0"))
	require.NoError(t, tc.c.DeleteDiskNode(ctx, a.Name))
	require.NoError(t, m.bind(ctx, b, x))
	// Only an existing node is bound.
	gone := *c
	gone.ID = "0123456789abcdef0123456789abcdef"
	require.ErrorIs(t, m.bind(ctx, &gone, z), errSpecChanged)
	// A binding of a node deleted behind the API's back is garbage: it
	// does not keep its agent from serving another node.
	v, err := json.Marshal(vda.Binding{NodeID: gone.ID, NodeName: "127.0.0.9:9720", Role: "dn", AgentID: z})
	require.NoError(t, err)
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyNodeBinding(gone.ID), Value: v}, {Key: vda.KeyAgentBinding(z), Value: v}}})
	require.NoError(t, err)
	require.NoError(t, m.bind(ctx, c, z))
	_, err = s.Get(ctx, vda.KeyNodeBinding(gone.ID))
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := tc.c.UnbindDiskNode(ctx, c.Name)
	require.NoError(t, err)
	require.Equal(t, z, got.AgentID)
}

// With mutual TLS, the agent of node X presents vda://agent/X: an alias
// of X fails the handshake, so it is never synced and shows why.
func TestTLSAliasFailsTheHandshake(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	a := agenttest.NewFakeWith(t, agent.RoleDN, func(addr string) []grpc.ServerOption {
		// Valid for the alias's IP too: the name it carries is what refuses.
		cfg, err := ca.Issue(mtls.RoleAgent, addr, net.IPv4(127, 0, 0, 2))
		require.NoError(t, err)
		tc, err := cfg.ServerTLS()
		require.NoError(t, err)
		return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(tc))}
	})
	s := newMemStore(t)
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	tc := &cluster{t: t, s: s, c: c, dns: []*agenttest.Fake{a}}
	addDN(t, c, a.Addr)
	alias := aliasOf(t, a.Addr)
	aliasDN := addDN(t, c, alias)

	cfg := testConfig(s, "m0")
	cfg.Insecure = false
	cfg.DialOptions = append(cfg.DialOptions, aliasDialer(map[string]string{alias: a.Addr}))
	cfg.TLS, err = ca.Issue(mtls.RoleAdmin, "admin")
	require.NoError(t, err)
	_, err = New(cfg)
	require.ErrorIs(t, err, ErrConfig, "a monitor needs a monitor's certificate")
	cfg.TLS, err = ca.Issue(mtls.RoleMonitor, "m0")
	require.NoError(t, err)
	startMonitor(t, cfg)

	eventually(t, func() bool { return tc.converged(a) }, wait, 5*time.Millisecond)
	eventually(t, func() bool {
		return strings.Contains(dnError(t, c, alias), "the certificate names vda://agent/"+a.Addr+", want vda://agent/"+alias)
	}, wait, 5*time.Millisecond, "last: %s", dnError(t, c, alias))
	neverSyncedAs(t, a, aliasDN.ID)
}

// poison sends n's agent a forged Sync (no TLS): the desired state the
// monitor would send, at the largest generation and epoch, carrying them
// as its own store revision.
func poison(t *testing.T, s *realCluster, n *realNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	snap, err := LoadSnapshot(ctx, s.s)
	require.NoError(t, err)
	var req *agentpb.SyncRequest
	for _, np := range Build(snap).Nodes {
		if np.Name == n.Addr {
			req = proto.Clone(np.Request).(*agentpb.SyncRequest)
		}
	}
	require.NotNil(t, req)
	c, err := agent.Dial(ctx, n.Addr)
	require.NoError(t, err)
	defer c.Close()
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	req.AgentId, req.Generation, req.StoreRevision = h.AgentId, math.MaxInt64, math.MaxInt64
	for _, pd := range req.GetDn().GetPds() {
		for _, vd := range pd.GetVds() {
			vd.Epoch = math.MaxInt64
			if n, ok := nvmeof.ParseName(vd.GetHostNqn()); ok {
				vd.HostNqn = string(nvmeof.PrimaryHostNQN(n.ID, math.MaxInt64))
			}
		}
	}
	_, err = c.Sync(ctx, req)
	require.NoError(t, err, "a forged state is accepted without TLS (and its guard kept)")
}

// guard returns what n's guard holds.
func guard(t *testing.T, n *realNode) (gen, maxEpoch int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agent.Dial(ctx, n.Addr)
	require.NoError(t, err)
	defer c.Close()
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	return h.GuardGeneration, h.GuardMaxEpoch
}

// restartAgent stops n's agent and starts it again (SPDK keeps running);
// its guard and ID come back from its state dir.
func (n *realNode) restartAgent() {
	n.StopAgent()
	n.restart() // SPDK is up: only the agent starts
}

// guardWithinStore reports whether n's guard holds nothing above the
// store's revision.
func guardWithinStore(t *testing.T, rc *realCluster, n *realNode) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agent.Dial(ctx, n.Addr)
	require.NoError(t, err)
	defer c.Close()
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	if err != nil {
		return false
	}
	rev, err := rc.s.Revision(ctx)
	require.NoError(t, err)
	return h.GuardGeneration <= rev && h.GuardMaxEpoch <= rev
}

// A disk node poisoned with the largest generation and epoch would refuse
// every real state forever; the monitor re-anchors it to the store, and
// the node takes new state again, also when it was poisoned while no
// monitor ran and restarted since.
func TestRealPoisonedAgentIsReanchored(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 1)
	rc.createDA("da0", 2, 1)
	_, stop := startMonitor(t, testConfig(s, "m0"))
	waitServed(t, rc, "da0")
	dn := rc.dns[0]

	poison(t, rc, dn)
	eventually(t, func() bool { return guardWithinStore(t, rc, dn) }, wait, 10*time.Millisecond)
	rc.createDA("da1", 2, 1) // needs a VD on the poisoned node
	waitServed(t, rc, "da0", "da1")

	stop()
	poison(t, rc, dn)
	dn.restartAgent()
	gen, epoch := guard(t, dn)
	require.EqualValues(t, math.MaxInt64, gen, "kept across the restart")
	require.EqualValues(t, math.MaxInt64, epoch)
	startMonitor(t, testConfig(s, "m1"))
	rc.createDA("da2", 2, 1)
	waitServed(t, rc, "da0", "da1", "da2")
	require.True(t, guardWithinStore(t, rc, dn))
}
