package monitor

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
	"github.com/vda-io/vda/store"
)

// inProcessConfig is testConfig driving the agents through tr.
func inProcessConfig(s store.Store, tr Transport) Config {
	cfg := testConfig(s, "m0")
	cfg.Insecure, cfg.DialOptions, cfg.Transport = false, nil, tr
	return cfg
}

// A Transport is the whole way to the agents: the default transport's
// settings beside one are refused, not ignored.
func TestConfigTransport(t *testing.T) {
	s := newMemStore(t)
	tr, err := NewInProcess("m0")
	require.NoError(t, err)
	require.NoError(t, Config{Store: s, ID: "m", Transport: tr}.Validate(), "neither TLS nor Insecure needed")
	for name, mut := range map[string]func(*Config){
		"insecure":     func(c *Config) { c.Insecure = true },
		"tls":          func(c *Config) { c.TLS = mtls.Config{CertFile: "a", KeyFile: "b", CAFile: "c"} },
		"dial options": func(c *Config) { c.DialOptions = []grpc.DialOption{grpc.WithUserAgent("x")} },
	} {
		cfg := Config{Store: s, ID: "m", Transport: tr}
		mut(&cfg)
		require.ErrorIs(t, cfg.Validate(), ErrConfig, name)
	}
	_, err = NewInProcess("not/a name")
	require.ErrorIs(t, err, ErrConfig)
}

// The in-process transport drives real agents without a network: nodes
// named as the embedder likes converge, and a controller node that dies
// (its agent stopped and its SPDK crashed) is failed over, fast, because a
// stopped agent is refused as a dead server's port is.
func TestInProcessTransportFailover(t *testing.T) {
	s := newMemStore(t)
	tr, err := NewInProcess("m0")
	require.NoError(t, err)
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	ctx := context.Background()
	nodes := map[string]*agenttest.Node{}
	for i, role := range []agent.Role{agent.RoleDN, agent.RoleCN, agent.RoleCN} {
		n := agenttest.StartNode(t, agenttest.Config{Role: role, Name: fmt.Sprintf("%s%d", role, i), Register: tr})
		nodes[n.Name] = n
		spec := vda.NodeSpec{Name: n.Name, Listener: n.Listener, Location: n.Name}
		if role == agent.RoleDN {
			_, err = c.CreateDiskNode(ctx, spec)
			require.NoError(t, err)
			_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: n.Name, Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 268435456}})
		} else {
			_, err = c.CreateControllerNode(ctx, spec)
		}
		require.NoError(t, err)
	}
	_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
	require.NoError(t, err)
	m, _ := startMonitor(t, inProcessConfig(s, tr))
	// The primary's controller is healthy (the array is degraded while
	// its other controller's node is dead).
	healthy := func() (vda.Cntlr, bool) {
		da, err := c.GetDiskArray(ctx, "da0")
		require.NoError(t, err)
		p, _ := da.Primary()
		return p, da.Initialized && da.Status.Part(p.ID).Health == vda.HealthHealthy
	}
	eventually(t, func() bool { _, ok := healthy(); return ok }, wait, 5*time.Millisecond)
	before, _ := healthy()

	nodes[before.CNName].Kill()
	eventually(t, func() bool {
		p, ok := healthy()
		return ok && p.ID != before.ID
	}, wait, 5*time.Millisecond)
	require.Equal(t, 1, m.Stats().NodesFailedRefused, "refused, not silent")
	after, _ := healthy()
	cn, err := c.GetControllerNode(ctx, before.CNName)
	require.NoError(t, err)
	require.Equal(t, vda.HealthFailed, cn.Status.Health)
	require.NotEqual(t, before.CNName, after.CNName)

	// Back, with a new agent registered under its name: pushed again.
	require.NoError(t, nodes[before.CNName].Restart(ctx))
	eventually(t, func() bool {
		cn, err := c.GetControllerNode(ctx, before.CNName)
		require.NoError(t, err)
		return cn.Status.Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
}

// InProcess reaches the agent at a node's address, as the monitor's
// identity, and refuses what a gRPC handshake would: no agent there, or an
// agent whose certificate names another node.
func TestInProcessTransportChecks(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	n := agenttest.StartNode(t, agenttest.Config{Role: agent.RoleCN, Name: "cn0", Agent: func(n *agenttest.Node, c *agent.Config) {
		var err error
		c.TLS, err = ca.Issue(mtls.RoleAgent, n.Name)
		require.NoError(t, err)
	}})
	tr, err := NewInProcess("m0")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn := func(name, addr string) AgentConn {
		c, err := tr.Dial(ctx, Target{Name: name, Address: addr, Role: RoleCN})
		require.NoError(t, err)
		return c
	}
	_, err = conn("cn0", "cn0").Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "nothing registered yet: %v", err)

	tr.Add("cn0", n.Agent())
	h, err := conn("cn0", "cn0").Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, "cn0", h.GetNodeName())
	require.Equal(t, n.Agent().AgentID(), h.GetAgentId())

	tr.Add("10.0.0.9:9820", n.Agent()) // the address of node cn1 reaches cn0's agent
	_, err = conn("cn1", "10.0.0.9:9820").Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.ErrorContains(t, err, "the agent at 10.0.0.9:9820 is node cn0's, want node cn1")

	// The agent checks the caller's role: an admin may ask for Health but
	// never push state, with or without TLS on the network side.
	admin := n.Agent().Local(mtls.Identity{Role: mtls.RoleAdmin, Name: "alice"})
	_, err = admin.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	_, err = admin.Sync(ctx, &agentpb.SyncRequest{AgentId: h.GetAgentId(), NodeName: "cn0", Generation: 1, StoreRevision: 1,
		State: &agentpb.SyncRequest_Cn{Cn: &agentpb.CnState{}}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))

	tr.Remove("cn0")
	_, err = conn("cn0", "cn0").Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "removed")
}

// A node's Address is where the monitor dials; its name is what the agent
// must prove: over mutual TLS the agent of node "cn0" presents
// vda://agent/cn0 at whatever address it listens.
func TestAddressApartFromName(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	s := newMemStore(t)
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	ctx := context.Background()
	withTLS := func(n *agenttest.Node, cfg *agent.Config) {
		var err error
		cfg.TLS, err = ca.Issue(mtls.RoleAgent, n.Name, net.IPv4(127, 0, 0, 1))
		require.NoError(t, err)
	}
	dn := agenttest.StartNode(t, agenttest.Config{Role: agent.RoleDN, Name: "dn0", GRPC: true, Agent: withTLS})
	cn := agenttest.StartNode(t, agenttest.Config{Role: agent.RoleCN, Name: "cn0", GRPC: true, Agent: withTLS})
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn0", Address: dn.Addr, Listener: dn.Listener})
	require.NoError(t, err)
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 268435456}})
	require.NoError(t, err)
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Address: cn.Addr, Listener: cn.Listener})
	require.NoError(t, err)
	_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 1, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
	require.NoError(t, err)
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn1", Address: cn.Addr, Listener: listener("127.0.0.1", "1")})
	require.NoError(t, err)
	// cn1's address reaches cn0's agent: the handshake fails on the name,
	// so cn1 is never synced.
	cfg := testConfig(s, "m0")
	cfg.Insecure = false
	cfg.TLS, err = ca.Issue(mtls.RoleMonitor, "m0")
	require.NoError(t, err)
	startMonitor(t, cfg)
	eventually(t, func() bool {
		da, err := c.GetDiskArray(ctx, "da0")
		require.NoError(t, err)
		return da.Initialized && da.Status.Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	eventually(t, func() bool {
		cn1, err := c.GetControllerNode(ctx, "cn1")
		require.NoError(t, err)
		return strings.Contains(cn1.Status.ErrorMsg, "the certificate names vda://agent/cn0, want vda://agent/cn1")
	}, wait, 5*time.Millisecond)
}

// A node whose Address changes is dialed at the new one: the monitor
// drops the connection to the old address and drives the node there.
func TestAddressChangeRedials(t *testing.T) {
	s := newMemStore(t)
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	ctx := context.Background()
	dn := agenttest.NewFake(t, agent.RoleDN)
	nowhere := reserveRefused(t)
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn0", Address: nowhere, Listener: listener("10.0.0.1", "4420")})
	require.NoError(t, err)
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool {
		n, err := c.GetDiskNode(ctx, "dn0")
		require.NoError(t, err)
		return n.Status.Health == vda.HealthFailed && strings.Contains(n.Status.ErrorMsg, nowhere)
	}, wait, 5*time.Millisecond)
	require.Empty(t, dn.Records(), "the agent is not at the old address")

	_, err = c.ModifyDiskNode(ctx, "dn0", vda.NodeUpdate{Address: &dn.Addr})
	require.NoError(t, err)
	eventually(t, func() bool {
		n, err := c.GetDiskNode(ctx, "dn0")
		require.NoError(t, err)
		return n.Status.Health == vda.HealthHealthy && dn.LastApplied() != nil
	}, wait, 5*time.Millisecond)
	require.Equal(t, "dn0", dn.LastApplied().GetNodeName(), "the node is still dn0")
}

// reserveRefused is a loopback address held for the test where nothing
// listens: connections to it are refused.
func reserveRefused(t *testing.T) string {
	return reserve.ForTest(t, "127.0.0.1").String()
}

// A GRPC connection tells when it breaks: not while the agent answers,
// at once when the agent's process goes (its connections closed), and
// again after it came back and went once more.
func TestGRPCConnTellsWhenItBreaks(t *testing.T) {
	a := agenttest.NewFake(t, agent.RoleCN)
	conn, err := GRPC{}.Dial(context.Background(), Target{NodeID: "n0", Name: a.Addr, Address: a.Addr, Role: RoleCN})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	bw, ok := conn.(BreakWatcher)
	require.True(t, ok, "GRPC's connections are BreakWatchers")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for round := range 2 {
		broken := bw.Broken(ctx)
		_, err = conn.Health(ctx, &agentpb.HealthRequest{})
		require.NoError(t, err, "round %d", round)
		select {
		case <-broken:
			t.Fatalf("round %d: broken while the agent answers", round)
		default:
		}
		a.Stop()
		select {
		case <-broken:
		case <-time.After(wait):
			t.Fatalf("round %d: the agent stopped, the connection did not tell", round)
		}
		a.Restart(fmt.Sprintf("i%d", round+1))
		eventually(t, func() bool {
			_, err := conn.Health(ctx, &agentpb.HealthRequest{})
			return err == nil
		}, wait, 5*time.Millisecond)
	}
}
