package main

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
)

// startMonitor runs the binary's run with args and returns its health
// address and a function that stops it and returns its exit code.
func startMonitor(t *testing.T, args ...string) (string, func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	code := make(chan int, 1)
	var stderr syncBuffer
	go func() { code <- run(ctx, args, &stderr, ready) }()
	select {
	case addr := <-ready:
		var once sync.Once
		var c int
		stop := func() int { once.Do(func() { cancel(); c = <-code }); return c }
		t.Cleanup(func() { stop() })
		return addr.String(), stop
	case c := <-code:
		cancel()
		t.Fatalf("monitor exited with %d: %s", c, stderr.String())
		return "", nil
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func checkHealth(t *testing.T, addr string, creds credentials.TransportCredentials) healthpb.HealthClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func serving(h healthpb.HealthClient, service string) bool {
	r, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

func TestMonitorServesHealth(t *testing.T) {
	addr, stop := startMonitor(t, "--listener", "127.0.0.1", "--port", "0", "--db-uri", "memory://",
		"--lease-ttl", "1s", "--log-level", "error")
	h := checkHealth(t, addr, insecure.NewCredentials())
	require.Eventually(t, func() bool { return serving(h, "") && serving(h, Service) }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, stop())
}

// agent is a minimal DN agent that records the Syncs it gets.
type agent struct {
	agentpb.UnimplementedAgentServer
	mu    sync.Mutex
	syncs []*agentpb.SyncRequest
}

func (a *agent) Health(context.Context, *agentpb.HealthRequest) (*agentpb.HealthReply, error) {
	return &agentpb.HealthReply{Role: "dn", InstanceId: "i0"}, nil
}

func (a *agent) Sync(_ context.Context, req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
	a.mu.Lock()
	a.syncs = append(a.syncs, req)
	a.mu.Unlock()
	r := &agentpb.SyncReply{Generation: req.GetGeneration(), InstanceId: "i0"}
	for _, pd := range req.GetDn().GetPds() {
		r.Objects = append(r.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_PD, Id: pd.GetId(), Ok: true,
			TotalBytes: 1 << 30, FreeBytes: 1 << 30})
	}
	return r, nil
}

func (a *agent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.syncs)
}

func startAgent(t *testing.T, tls mtls.Config) (*agent, string) {
	var opts []grpc.ServerOption
	if tls.Enabled() {
		tc, err := tls.ServerTLS()
		require.NoError(t, err)
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	srv := grpc.NewServer(opts...)
	a := &agent{}
	agentpb.RegisterAgentServer(srv, a)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return a, lis.Addr().String()
}

// newSQLite creates a store file with one DN (at the agent's address) and
// a PD of an aio type whose size only the agent knows.
func newSQLite(t *testing.T, agentAddr string) (string, store.Store) {
	uri := (&url.URL{Scheme: "sqlite", Path: filepath.Join(t.TempDir(), "vda.db")}).String()
	ctx := context.Background()
	_, err := sqlstore.CreateSchema(ctx, uri)
	require.NoError(t, err)
	st, err := store.Open(ctx, uri)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	c, err := vda.New(vda.DefaultConfig(st))
	require.NoError(t, err)
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: agentAddr,
		ListenerConf: `{"trtype":"tcp","traddr":"127.0.0.1","adrfam":"ipv4","trsvcid":"4420"}`})
	require.NoError(t, err)
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: agentAddr, Name: "pd0", Conf: `{"type":"aio","filename":"/dev/sdb"}`})
	require.NoError(t, err)
	return uri, st
}

// The binary drives an agent found in the store and writes its report
// back: the aio PD gets its capacity (and becomes placeable).
func TestMonitorDrivesAgents(t *testing.T) {
	srvTLS, cliTLS, err := mtlstest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		agentTLS mtls.Config
		flags    []string
	}{
		"plaintext": {},
		"mutual TLS": {agentTLS: srvTLS,
			flags: []string{"--tls-cert", cliTLS.CertFile, "--tls-key", cliTLS.KeyFile, "--tls-ca", cliTLS.CAFile}},
	} {
		t.Run(name, func(t *testing.T) {
			a, addr := startAgent(t, tc.agentTLS)
			uri, st := newSQLite(t, addr)
			args := append([]string{"--port", "0", "--db-uri", uri, "--id", "m1", "--lease-ttl", "2s",
				"--health-interval", "50ms", "--miss-threshold", "3", "--health-window", "1s", "--resync-interval", "1m",
				"--sync-timeout", "5s", "--log-level", "error"}, tc.flags...)
			healthAddr, stop := startMonitor(t, args...)
			require.Eventually(t, func() bool { return a.count() > 0 }, 10*time.Second, 10*time.Millisecond)
			c, err := vda.New(vda.DefaultConfig(st))
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				pd, err := c.GetPhysicalDisk(context.Background(), addr, "pd0")
				return err == nil && pd.CapacityBytes() == 1<<30
			}, 10*time.Second, 10*time.Millisecond)
			if tc.agentTLS.Enabled() {
				// The health service wants a client certificate too.
				ctls, err := cliTLS.ClientTLS()
				require.NoError(t, err)
				h := checkHealth(t, healthAddr, credentials.NewTLS(ctls))
				require.Eventually(t, func() bool { return serving(h, Service) }, 10*time.Second, 10*time.Millisecond)
				plain := checkHealth(t, healthAddr, insecure.NewCredentials())
				require.False(t, serving(plain, Service))
			}
			require.Zero(t, stop())
		})
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parse([]string{"--data-dir", dir, "--listener", "192.168.0.12", "--port", "9620"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "embedded://"+filepath.Join(dir, "etcd"), cfg.dbURI)
	require.Equal(t, "192.168.0.12:9620", cfg.mon.ID, "the default ID is the health address")
	require.Equal(t, 400*time.Millisecond, cfg.mon.Failover.Interval)
	require.Equal(t, 3, cfg.mon.Failover.MissThreshold)
	require.Equal(t, 5*time.Second, cfg.mon.Failover.SlowTimeout)
	require.Equal(t, 10*time.Second, cfg.mon.Failover.HoldDown)
	cfg, err = parse([]string{"--data-dir", dir, "--slow-timeout", "8s", "--hold-down", "0"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 8*time.Second, cfg.mon.Failover.SlowTimeout)
	require.Zero(t, cfg.mon.Failover.HoldDown, "no hold-down")
	// The default store really starts.
	addr, stop := startMonitor(t, "--port", "0", "--data-dir", dir, "--log-level", "error")
	require.NotEmpty(t, addr)
	require.Zero(t, stop())
}

func TestBadFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown flag":     {"--nope"},
		"bad duration":     {"--lease-ttl", "soon"},
		"single miss":      {"--miss-threshold", "1"},
		"window too short": {"--health-interval", "1s", "--health-window", "1s"},
		"slow too short":   {"--slow-timeout", "1s"},
		"hold-down":        {"--hold-down", "-1s"},
		"bad id":           {"--id", "a/b"},
		"partial TLS":      {"--tls-cert", "x.pem"},
		"extra args":       {"now"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, 2, run(context.Background(), append(args, "--db-uri", "memory://"), &stderr, nil))
			require.Contains(t, stderr.String(), "vda-monitor")
		})
	}
	var stderr bytes.Buffer
	require.Zero(t, run(context.Background(), []string{"--help"}, &stderr, nil))
	require.Contains(t, stderr.String(), "-health-interval")
	require.Contains(t, stderr.String(), "-slow-timeout")
	require.Contains(t, stderr.String(), "-hold-down")
	require.Equal(t, 1, run(context.Background(), []string{"--db-uri", "nope://x", "--port", "0"}, &stderr, nil))
}
