package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// sockPath is a short unix socket path (t.TempDir can exceed the limit).
func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "agent")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "spdk.sock")
}

const conf = `{"trtype":"tcp","traddr":"127.0.0.1","adrfam":"ipv4","trsvcid":"4420"}`

// fakeSPDK starts a fake spdk_tgt for an agent and returns its socket and
// the node's listener: a port reserved for the fake (never a fixed one in a
// test).
func fakeSPDK(t *testing.T) (sock, listenerConf string) {
	rp := reserve.ForTest(t, "127.0.0.1")
	srv := spdktest.NewServer(t, spdktest.WithReserved(rp))
	return srv.SockPath(), fmt.Sprintf(`{"trtype":"tcp","traddr":"127.0.0.1","adrfam":"ipv4","trsvcid":"%d"}`, rp.Addr().Port())
}

// start runs the binary's run with args and returns its address and a
// function that stops it (the SIGINT path: ctx is cancelled) and returns its
// exit code.
func start(t *testing.T, args ...string) (string, func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	code := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { code <- run(ctx, args, &stderr, ready) }()
	select {
	case addr := <-ready:
		stopped := false
		var c int
		stop := func() int {
			if !stopped {
				stopped = true
				cancel()
				c = <-code
			}
			return c
		}
		t.Cleanup(func() { stop() })
		return addr.String(), stop
	case c := <-code:
		cancel()
		t.Fatalf("vda-agent exited with %d: %s", c, stderr.String())
		return "", nil
	}
}

func TestServesHealthAndSyncWithFakeSPDK(t *testing.T) {
	sock, fakeConf := fakeSPDK(t)
	addr, stop := start(t, "--role", "dn", "--listener", "127.0.0.1", "--port", "0", "--sock-path", sock,
		"--listener-conf", fakeConf, "--state-dir", t.TempDir(), "--log-level", "error", "--insecure")
	c, err := agent.Dial(context.Background(), addr)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, "dn", h.Role)
	require.Contains(t, h.SpdkVersion, "SPDK")

	pd, vd := nvmeof.NewID(), nvmeof.NewID()
	rep, err := c.Sync(ctx, &agentpb.SyncRequest{Generation: 1, StoreRevision: 1, NodeId: nvmeof.NewID(), AgentId: h.AgentId, State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{
		Pds: []*agentpb.PdSpec{{Id: pd, Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: 64 << 20}},
			Vds: []*agentpb.VdSpec{{Id: vd, DaId: nvmeof.NewID(), Epoch: 1, SizeBytes: 8 << 20, HostNqn: string(nvmeof.PrimaryHostNQN(nvmeof.NewID(), 1))}}}},
	}}})
	require.NoError(t, err)
	for _, o := range rep.Objects {
		require.True(t, o.Ok, o.Error)
	}
	// The VD is exported on the node's port, and served there.
	sc, err := spdk.Dial(ctx, sock)
	require.NoError(t, err)
	defer sc.Close()
	ls, err := sc.NvmfSubsystemGetListeners(ctx, spdk.NQNParams{NQN: string(nvmeof.VDNQN(vd))})
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, "127.0.0.1", ls[0].Address.TRAddr)
	require.NotContains(t, []string{"", "0", "1"}, ls[0].Address.TRSvcID)
	nc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", ls[0].Address.TRSvcID))
	require.NoError(t, err)
	require.NoError(t, nc.Close())
	require.Zero(t, stop(), "a cancelled context (SIGINT) is a clean stop")
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
}

// With certificates in $VDA_TLS_DIR and no TLS flags (the tutorial's
// command line) the agent serves mutual TLS with roles: a monitor may
// Sync, the CLI's certificate may not, and plaintext is refused even from
// an allowed address.
func TestControllerNodeWithTLSAndAllowList(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	const name = "127.0.0.1:9820" // the node the agent's certificate names (it listens elsewhere here)
	server, err := ca.Issue(mtls.RoleAgent, name)
	require.NoError(t, err)
	t.Setenv(mtls.EnvDir, filepath.Dir(server.CertFile))
	sock, fakeConf := fakeSPDK(t)
	addr, stop := start(t, "--role", "cn", "--listener", "127.0.0.1", "--port", "0", "--sock-path", sock,
		"--listener-conf", fakeConf, "--allow", "127.0.0.1,::1", "--state-dir", t.TempDir(), "--log-level", "error")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(opts ...agent.DialOption) *agent.Client {
		c, err := agent.Dial(ctx, addr, opts...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	monitor, err := ca.Issue(mtls.RoleMonitor, "m0")
	require.NoError(t, err)
	admin, err := ca.Issue(mtls.RoleAdmin, "admin")
	require.NoError(t, err)
	mc := dial(agent.WithTLS(monitor))
	h, err := mc.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, "cn", h.Role)
	require.Equal(t, name, h.NodeName)
	req := &agentpb.SyncRequest{Generation: 1, StoreRevision: 1, NodeId: nvmeof.NewID(), AgentId: h.AgentId, NodeName: name,
		State: &agentpb.SyncRequest_Cn{Cn: &agentpb.CnState{}}}
	_, err = mc.Sync(ctx, req)
	require.NoError(t, err)
	_, err = dial(agent.WithTLS(admin)).Sync(ctx, req)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "the CLI's certificate: %v", err)
	_, err = dial().Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "plaintext from an allowed address: %v", err)
	require.Zero(t, stop())
}

// Without certificates and without --insecure the agent does not start,
// and says how to make its certificate.
func TestRefusesToServeAnyone(t *testing.T) {
	for _, extra := range [][]string{nil, {"--allow", "192.168.0.12"}} {
		var stderr bytes.Buffer
		args := append([]string{"--role", "dn", "--listener", "192.168.0.14", "--listener-conf", conf, "--sock-path", sockPath(t)}, extra...)
		require.Equal(t, 2, run(context.Background(), args, &stderr, nil), "an allow-list is not enough")
		require.Contains(t, stderr.String(), "--role agent --name 192.168.0.14:9720 --ip 192.168.0.14")
		require.Contains(t, stderr.String(), "--insecure")
	}
}

// TestMain keeps the tests from finding certificates in /etc/vda/tls.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vda-tls")
	if err != nil {
		panic(err)
	}
	os.Setenv(mtls.EnvDir, dir)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func TestParseDefaults(t *testing.T) {
	o, err := parse([]string{"--role", "dn", "--listener", "192.168.0.14", "--sock-path", "/tmp/dn.sock", "--listener-conf",
		`{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}`, "--insecure"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "192.168.0.14:9720", o.cfg.ListenAddr)
	require.Equal(t, "/tmp/dn.sock", o.cfg.SPDKAddr)
	require.Equal(t, "tcp 192.168.0.14:4420", o.cfg.Listener.String())
	require.Equal(t, "/var/lib/vda/agent/192.168.0.14_9720", o.cfg.StateDir, "one state directory per agent by default")
	o, err = parse([]string{"--role", "cn", "--listener-conf", conf, "--allow", "10.0.0.1, 10.0.0.2", "--allow", "fd00::/8", "--insecure"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9820", o.cfg.ListenAddr)
	require.Equal(t, []string{"10.0.0.1", "10.0.0.2", "fd00::/8"}, o.cfg.AllowedCallers)
	require.Empty(t, o.cfg.AioDirs, "no aio PDs unless allowed")
	require.Empty(t, o.cfg.LvstoreLabels)
	o, err = parse([]string{"--role", "dn", "--listener-conf", conf, "--aio-dir", "/var/lib/vda/aio/", "--aio-dir", "/dev/sdb",
		"--insecure"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, []string{"/var/lib/vda/aio", "/dev/sdb"}, o.cfg.AioDirs)
}

func TestBadCommandLines(t *testing.T) {
	sock := sockPath(t)
	for name, args := range map[string][]string{
		"no role":           {"--listener-conf", conf},
		"bad role":          {"--role", "pd", "--listener-conf", conf},
		"no listener-conf":  {"--role", "dn"},
		"bad listener":      {"--role", "dn", "--listener-conf", `{"trtype":"tcp"}`},
		"port 0":            {"--role", "dn", "--listener-conf", `{"trtype":"tcp","traddr":"127.0.0.1","adrfam":"ipv4","trsvcid":"0"}`, "--insecure"},
		"unknown flag":      {"--role", "dn", "--listener-conf", conf, "--nope"},
		"bad port":          {"--role", "dn", "--listener-conf", conf, "--port", "x"},
		"port range":        {"--role", "dn", "--listener-conf", conf, "--port", "70000"},
		"extra args":        {"--role", "dn", "--listener-conf", conf, "extra"},
		"no fake in agents": {"--role", "dn", "--listener-conf", conf, "--fake-spdk"},
		"relative aio dir":  {"--role", "dn", "--listener-conf", conf, "--aio-dir", "aio"},
		"bad log format":    {"--role", "dn", "--listener-conf", conf, "--insecure", "--log-format", "xml"},
	} {
		var stderr bytes.Buffer
		require.Equal(t, 2, run(context.Background(), append(args, "--sock-path", sock), &stderr, nil), name)
		require.NotEmpty(t, stderr.String(), name)
	}
	require.Equal(t, 0, run(context.Background(), []string{"-h"}, &bytes.Buffer{}, nil))
}

func TestRuntimeFailuresExitOne(t *testing.T) {
	state := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(state, "agent-state.json"), []byte("garbage"), 0o600))
	for name, args := range map[string][]string{
		"damaged state": {"--state-dir", state, "--insecure"},
		"bad tls":       {"--tls-cert", "/nonexistent", "--tls-key", "/nonexistent", "--tls-ca", "/nonexistent"},
		"bad allow":     {"--allow", "monitor.example", "--insecure"},
		"bad node id":   {"--node-id", "dn0", "--insecure"},
	} {
		if !slices.Contains(args, "--state-dir") {
			args = append(args, "--state-dir", t.TempDir())
		}
		args = append(args, "--role", "dn", "--port", "0", "--listener-conf", conf, "--sock-path", sockPath(t), "--log-level", "off")
		require.Equal(t, 1, run(context.Background(), args, &bytes.Buffer{}, nil), name)
	}
	// The port is taken.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	sock, fakeConf := fakeSPDK(t)
	var stderr bytes.Buffer
	require.Equal(t, 1, run(context.Background(), []string{"--role", "dn", "--port", port, "--listener-conf", fakeConf,
		"--sock-path", sock, "--state-dir", t.TempDir(), "--log-level", "error", "--insecure"}, &stderr, nil))
	require.Contains(t, stderr.String(), "address already in use")
}
