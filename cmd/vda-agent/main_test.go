package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/nvmeof"
)

// sockPath is a short unix socket path (t.TempDir can exceed the limit).
func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "agent")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "spdk.sock")
}

const conf = `{"trtype":"tcp","traddr":"127.0.0.1","adrfam":"ipv4","trsvcid":"4420"}`

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
	addr, stop := start(t, "--role", "dn", "--listener", "127.0.0.1", "--port", "0", "--sock-path", sockPath(t),
		"--listener-conf", conf, "--fake-spdk", "--state-dir", t.TempDir(), "--log-level", "error")
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
	rep, err := c.Sync(ctx, &agentpb.SyncRequest{Generation: 1, NodeId: nvmeof.NewID(), State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{
		Pds: []*agentpb.PdSpec{{Id: pd, Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: 64 << 20}},
			Vds: []*agentpb.VdSpec{{Id: vd, DaId: nvmeof.NewID(), Epoch: 1, SizeBytes: 8 << 20, HostNqn: string(nvmeof.PrimaryHostNQN(nvmeof.NewID(), 1))}}}},
	}}})
	require.NoError(t, err)
	for _, o := range rep.Objects {
		require.True(t, o.Ok, o.Error)
	}
	require.Zero(t, stop(), "a cancelled context (SIGINT) is a clean stop")
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
}

func TestControllerNodeWithTLSAndAllowList(t *testing.T) {
	server, client, err := mtlstest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	addr, stop := start(t, "--role", "cn", "--port", "0", "--sock-path", sockPath(t), "--listener-conf", conf,
		"--fake-spdk", "--allow", "127.0.0.1,::1", "--tls-cert", server.CertFile, "--tls-key", server.KeyFile,
		"--tls-ca", server.CAFile, "--log-level", "error")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := agent.Dial(ctx, addr, agent.WithTLS(client))
	require.NoError(t, err)
	defer c.Close()
	h, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, "cn", h.Role)
	plain, err := agent.Dial(ctx, addr)
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Zero(t, stop())
}

func TestParseDefaults(t *testing.T) {
	o, err := parse([]string{"--role", "dn", "--listener", "192.168.0.14", "--sock-path", "/tmp/dn.sock", "--listener-conf",
		`{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}`}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "192.168.0.14:9720", o.cfg.ListenAddr)
	require.Equal(t, "/tmp/dn.sock", o.cfg.SPDKAddr)
	require.Equal(t, "tcp 192.168.0.14:4420", o.cfg.Listener.String())
	o, err = parse([]string{"--role", "cn", "--listener-conf", conf, "--allow", "10.0.0.1, 10.0.0.2", "--allow", "fd00::/8"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9820", o.cfg.ListenAddr)
	require.Equal(t, []string{"10.0.0.1", "10.0.0.2", "fd00::/8"}, o.cfg.AllowedCallers)
	require.Empty(t, o.cfg.AioDirs, "no aio PDs unless allowed")
	require.Empty(t, o.cfg.LvstoreLabels)
	o, err = parse([]string{"--role", "dn", "--listener-conf", conf, "--aio-dir", "/var/lib/vda/aio/", "--aio-dir", "/dev/sdb",
		"--fake-spdk"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, []string{"/var/lib/vda/aio", "/dev/sdb"}, o.cfg.AioDirs)
	require.Len(t, o.cfg.LvstoreLabels, 1, "the fake's lvstores are recognised")
}

func TestBadCommandLines(t *testing.T) {
	sock := sockPath(t)
	for name, args := range map[string][]string{
		"no role":           {"--listener-conf", conf},
		"bad role":          {"--role", "pd", "--listener-conf", conf},
		"no listener-conf":  {"--role", "dn"},
		"bad listener":      {"--role", "dn", "--listener-conf", `{"trtype":"tcp"}`},
		"unknown flag":      {"--role", "dn", "--listener-conf", conf, "--nope"},
		"bad port":          {"--role", "dn", "--listener-conf", conf, "--port", "x"},
		"port range":        {"--role", "dn", "--listener-conf", conf, "--port", "70000"},
		"extra args":        {"--role", "dn", "--listener-conf", conf, "extra"},
		"nvme without fake": {"--role", "dn", "--listener-conf", conf, "--fake-nvme", "0000:01:00.0,size=1MiB"},
		"relative aio dir":  {"--role", "dn", "--listener-conf", conf, "--aio-dir", "aio"},
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
		"damaged state": {"--state-dir", state},
		"bad tls":       {"--tls-cert", "/nonexistent", "--tls-key", "/nonexistent", "--tls-ca", "/nonexistent"},
		"bad allow":     {"--allow", "monitor.example"},
		"bad node id":   {"--node-id", "dn0"},
	} {
		args = append(args, "--role", "dn", "--port", "0", "--listener-conf", conf, "--sock-path", sockPath(t), "--log-level", "off")
		require.Equal(t, 1, run(context.Background(), args, &bytes.Buffer{}, nil), name)
	}
	// The port is taken.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	require.Equal(t, 1, run(context.Background(), []string{"--role", "dn", "--port", port, "--listener-conf", conf,
		"--sock-path", sockPath(t), "--fake-spdk", "--log-level", "off"}, &bytes.Buffer{}, nil))
}
