package main

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
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
	"github.com/vda-io/vda/nvmeof"
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
		"--lease-ttl", "1s", "--log-level", "error", "--insecure")
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

const agentID = "0b6f3a52-6a0e-4d8e-9a57-1c2d3e4f5a6b"

func (a *agent) Health(context.Context, *agentpb.HealthRequest) (*agentpb.HealthReply, error) {
	return &agentpb.HealthReply{Role: "dn", InstanceId: "i0", AgentId: agentID}, nil
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

func (a *agent) first() *agentpb.SyncRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.syncs[0]
}

func (a *agent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.syncs)
}

// startAgent serves an agent on 127.0.0.1:0, with a certificate of ca
// naming its address (vda://agent/<addr>) unless ca is nil.
func startAgent(t *testing.T, ca *mtlstest.CA) (*agent, string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var opts []grpc.ServerOption
	if ca != nil {
		cfg, err := ca.Issue(mtls.RoleAgent, lis.Addr().String())
		require.NoError(t, err)
		tc, err := cfg.ServerTLS()
		require.NoError(t, err)
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	srv := grpc.NewServer(opts...)
	a := &agent{}
	agentpb.RegisterAgentServer(srv, a)
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
		Listener: nvmeof.TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: "4420"}})
	require.NoError(t, err)
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: agentAddr, Name: "pd0", Conf: vda.PDConf{Type: vda.PDAio, Filename: "/dev/sdb"}})
	require.NoError(t, err)
	return uri, st
}

// The binary drives an agent found in the store and writes its report
// back: the aio PD gets its capacity (and becomes placeable). With mutual
// TLS it finds its certificate in $VDA_TLS_DIR (no flags, as the tutorial
// starts it).
func TestMonitorDrivesAgents(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	mon, err := ca.Issue(mtls.RoleMonitor, "m1")
	require.NoError(t, err)
	admin, err := ca.Issue(mtls.RoleAdmin, "admin")
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		ca     *mtlstest.CA
		tlsDir string
		flags  []string
	}{
		"plaintext":  {flags: []string{"--insecure"}},
		"mutual TLS": {ca: ca, tlsDir: filepath.Dir(mon.CertFile)},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.tlsDir != "" {
				t.Setenv(mtls.EnvDir, tc.tlsDir)
			}
			a, addr := startAgent(t, tc.ca)
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
			first := a.first()
			require.Equal(t, agentID, first.GetAgentId(), "the node is bound to the agent it reached")
			require.Equal(t, addr, first.GetNodeName())
			if tc.ca != nil {
				// The health service wants a client certificate too.
				ctls, err := admin.ClientTLS()
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
	cfg, err := parse([]string{"--data-dir", dir, "--listener", "192.168.0.12", "--port", "9620", "--insecure"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "etcd:///?endpoint="+url.QueryEscape("unix://"+filepath.Join(dir, "etcd", "etcd.sock")), cfg.dbURI,
		"the socket of the portal's embedded store")
	require.True(t, cfg.localStore)
	require.Equal(t, "192.168.0.12:9620", cfg.mon.ID, "the default ID is the health address")
	require.Equal(t, 400*time.Millisecond, cfg.mon.Failover.Interval)
	require.Equal(t, 3, cfg.mon.Failover.MissThreshold)
	require.Equal(t, 5*time.Second, cfg.mon.Failover.SlowTimeout)
	require.Equal(t, 10*time.Second, cfg.mon.Failover.HoldDown)
	cfg, err = parse([]string{"--data-dir", dir, "--slow-timeout", "8s", "--hold-down", "0", "--insecure"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 8*time.Second, cfg.mon.Failover.SlowTimeout)
	require.Zero(t, cfg.mon.Failover.HoldDown, "no hold-down")
	// Without a portal there, it says what to do instead of starting a
	// store of its own.
	var stderr bytes.Buffer
	require.Equal(t, 1, run(context.Background(), []string{"--port", "0", "--data-dir", dir, "--insecure"}, &stderr, nil))
	require.Contains(t, stderr.String(), "no vda-portal store on this machine at "+filepath.Join(dir, "etcd", "etcd.sock"))
	// An explicit embedded store still works.
	addr, stop := startMonitor(t, "--port", "0", "--db-uri", "embedded://"+filepath.Join(dir, "own"), "--log-level", "error", "--insecure")
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
		"no certificates":  {},
		"insecure and TLS": {"--insecure", "--tls-cert", "x", "--tls-key", "y", "--tls-ca", "z"},
		"bad cluster id":   {"--insecure", "--cluster-id", "cluster-1"},
		"bad log format":   {"--insecure", "--log-format", "xml"},
		"bad log level":    {"--insecure", "--log-level", "loud"},
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
	require.Equal(t, 1, run(context.Background(), []string{"--db-uri", "nope://x", "--port", "0", "--insecure"}, &stderr, nil))
	stderr.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"--db-uri", "memory://"}, &stderr, nil))
	require.Contains(t, stderr.String(), "vda certs issue --dir ./vda-ca --role monitor")
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
