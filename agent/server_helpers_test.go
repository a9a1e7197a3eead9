package agent_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// srvFake starts a fake spdk_tgt set up as the tutorial does.
func srvFake(t testing.TB) *spdktest.Server {
	t.Helper()
	fake := spdktest.NewServer(t, spdktest.WithWaitForRPC())
	srvInit(t, fake)
	return fake
}

// srvInit sets fake up as the tutorial does (agenttest.InitSPDK).
func srvInit(t testing.TB, fake *spdktest.Server) {
	t.Helper()
	require.NoError(t, agenttest.InitSPDK(context.Background(), fake.SockPath()))
}

// srvListener reserves an NVMe-oF listener address for fake: a free
// local port that fake serves on once the agent adds the listener.
func srvListener(t testing.TB, fake *spdktest.Server) nvmeof.TransportID {
	t.Helper()
	trid, err := fake.Reserve("127.0.0.1")
	require.NoError(t, err)
	l, err := nvmeof.NewTransportID(trid.TrType, trid.AdrFam, trid.TrAddr, trid.TrSvcID)
	require.NoError(t, err)
	return l
}

// srvConfig is a DN agent's Config for fake.
func srvConfig(t testing.TB, role agent.Role, fake *spdktest.Server) agent.Config {
	cfg := agent.DefaultConfig(role)
	cfg.SPDKAddr = fake.SockPath()
	cfg.Listener = srvListener(t, fake)
	cfg.Insecure = true
	return cfg
}

// running is an Agent served on a local port.
type running struct {
	a    *agent.Agent
	addr string
	stop func() error // cancels Serve and returns its error
}

// srvStart creates an Agent for cfg and serves it until the test ends (or
// stop is called).
func srvStart(t testing.TB, cfg agent.Config) *running {
	t.Helper()
	a, err := agent.New(cfg)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(ctx, lis) }()
	var stopped bool
	var serveErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			serveErr = <-errc
			_ = a.Close()
		}
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{a: a, addr: lis.Addr().String(), stop: stop}
}

// srvDial returns a client of addr closed with the test. Like a monitor,
// it sends the agent's ID (from Health) in Syncs that name none.
func srvDial(t testing.TB, addr string, opts ...agent.DialOption) *agent.Client {
	t.Helper()
	c, err := agent.Dial(context.Background(), addr, append(opts, agent.WithGRPCOptions(grpc.WithUnaryInterceptor(bindAgentID)))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// srvDialRaw is srvDial without filling in the agent ID.
func srvDialRaw(t testing.TB, addr string, opts ...agent.DialOption) *agent.Client {
	t.Helper()
	c, err := agent.Dial(context.Background(), addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// bindAgentID fills in the agent ID of a Sync that names none, asking the
// agent's Health for it (as a monitor binding a node does).
func bindAgentID(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*agentpb.SyncRequest); ok && r.GetAgentId() == "" {
		h, err := agentpb.NewAgentClient(cc).Health(ctx, &agentpb.HealthRequest{})
		if err != nil {
			return err
		}
		r = proto.Clone(r).(*agentpb.SyncRequest)
		r.AgentId = h.GetAgentId()
		req = r
	}
	return inv(ctx, method, req, reply, cc, opts...)
}

func srvCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dnRequest is a Sync of one malloc PD with one VD of DA da at epoch,
// exported to controller cntlr.
func dnRequest(gen int64, node, pd, vd, da, cntlr string, epoch int64) *agentpb.SyncRequest {
	return &agentpb.SyncRequest{Generation: gen, StoreRevision: gen, NodeId: node, State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{
		Pds: []*agentpb.PdSpec{{Id: pd, Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: 64 << 20}},
			Vds: []*agentpb.VdSpec{{Id: vd, DaId: da, Epoch: epoch, SizeBytes: 8 << 20, HostNqn: string(nvmeof.PrimaryHostNQN(cntlr, uint64(epoch)))}}}},
	}}}
}

// hostsOf lists the hosts of VD vd's subsystem on fake.
func hostsOf(t testing.TB, fake *spdktest.Server, vd string) []string {
	t.Helper()
	c, err := spdk.Dial(context.Background(), fake.SockPath())
	require.NoError(t, err)
	defer c.Close()
	subs, err := c.NvmfGetSubsystems(context.Background(), spdk.NvmfGetSubsystemsParams{NQN: string(nvmeof.VDNQN(vd))})
	require.NoError(t, err)
	var out []string
	for _, h := range subs[0].Hosts {
		out = append(out, h.NQN)
	}
	return out
}

// mutations returns the state-changing methods fake got since ResetCounts.
func mutations(fake *spdktest.Server) []string {
	var out []string
	for _, m := range fake.CalledMethods() {
		if !spdk.IsReadOnly(m) {
			out = append(out, m)
		}
	}
	return out
}

func allOK(t testing.TB, r *agentpb.SyncReply) {
	t.Helper()
	for _, o := range r.GetObjects() {
		require.True(t, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
}

func spdktestHang() spdktest.Fault { return spdktest.Fault{Hang: true} }

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond)
}
