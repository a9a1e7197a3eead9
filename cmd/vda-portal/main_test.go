package main

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
)

// startPortal runs the binary's run with args and returns its address and
// a function that stops it and returns its exit code.
func startPortal(t *testing.T, args ...string) (string, func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	code := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { code <- run(ctx, args, &stderr, ready) }()
	select {
	case addr := <-ready:
		return addr.String(), func() int { cancel(); return <-code }
	case c := <-code:
		cancel()
		t.Fatalf("portal exited with %d: %s", c, stderr.String())
		return "", nil
	}
}

// backends are the store URIs the portal is tested on: every backend,
// PostgreSQL and MySQL only when scripts/test started their servers (the
// subtest says how to enable them otherwise). SQL databases get the schema
// as vda-db --action create gives it.
func backends() map[string]func(t *testing.T) string {
	sql := func(fresh func(testing.TB) string) func(t *testing.T) string {
		return func(t *testing.T) string {
			uri := fresh(t)
			_, err := sqlstore.CreateSchema(context.Background(), uri)
			require.NoError(t, err)
			return uri
		}
	}
	return map[string]func(t *testing.T) string{
		"memory": func(*testing.T) string { return "memory://" },
		"embedded": func(t *testing.T) string {
			return (&url.URL{Scheme: "embedded", Path: filepath.Join(t.TempDir(), "etcd")}).String()
		},
		"sqlite":   sql(sqltest.FreshSQLite),
		"postgres": sql(sqltest.FreshPostgres),
		"mysql":    sql(sqltest.FreshMySQL),
	}
}

// TestPortalServes runs the tutorial's cluster through the binary on each
// store: nodes, disks, a DA and its exporter are created, read back and
// torn down, with in-use deletes refused on the way.
func TestPortalServes(t *testing.T) {
	for name, uri := range backends() {
		t.Run(name, func(t *testing.T) {
			addr, stop := startPortal(t, "--listener", "127.0.0.1", "--port", "0", "--db-uri", uri(t), "--log-level", "error", "--insecure")
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			exportDA(t, pb.NewPortalClient(conn))
			require.NoError(t, conn.Close())
			require.Zero(t, stop())
		})
	}
}

func exportDA(t *testing.T, p pb.PortalClient) {
	ctx := context.Background()
	lc := func(ip, port string) string {
		return `{"trtype":"tcp","traddr":"` + ip + `","adrfam":"ipv4","trsvcid":"` + port + `"}`
	}
	for _, ip := range []string{"192.168.0.14", "192.168.0.15"} {
		_, err := p.CreateDn(ctx, &pb.CreateDnRequest{DnName: ip + ":9720", DnListenerConf: lc(ip, "4420"), Location: ip})
		require.NoError(t, err)
		_, err = p.CreatePd(ctx, &pb.CreatePdRequest{DnName: ip + ":9720", PdName: "pd0", PdConf: `{"type":"malloc","size":134217728}`})
		require.NoError(t, err)
	}
	for _, ip := range []string{"192.168.0.16", "192.168.0.17"} {
		_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: ip + ":9820", CnListenerConf: lc(ip, "4430")})
		require.NoError(t, err)
	}
	// A retried create is answered with the node; another spec under its
	// name is refused.
	_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "192.168.0.16:9820", CnListenerConf: lc("192.168.0.16", "4430")})
	require.NoError(t, err)
	_, err = p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "192.168.0.16:9820", CnListenerConf: lc("192.168.0.16", "4431")})
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	_, err = p.CreateDa(ctx, &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 2, DaSize: 32 << 20, PhysicalSize: 32 << 20, DaConf: `{"stripe_count":2, "stripe_size_kb":64}`})
	require.NoError(t, err)
	_, err = p.CreateDa(ctx, &pb.CreateDaRequest{DaName: "big", CntlrCnt: 2, DaSize: 1 << 30, DaConf: `{"stripe_count":2, "stripe_size_kb":64}`})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	_, err = p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "exp0", InitiatorNqn: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)

	exp, err := p.GetExp(ctx, &pb.GetExpRequest{DaName: "da0", ExpName: "exp0"})
	require.NoError(t, err)
	require.Equal(t, "nqn.2016-06.io.spdk:vda-exp-da0-exp0", exp.GetExpMsg().GetExpNqn())
	es := exp.GetExpMsg().GetEsMsgList()
	require.Len(t, es, 2)
	require.Equal(t, []string{"192.168.0.16:9820", "192.168.0.17:9820"}, []string{es[0].GetCnName(), es[1].GetCnName()})
	require.Equal(t, lc("192.168.0.16", "4430"), es[0].GetCnListenerConf())
	sum, err := p.GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.GetDaCnt())
	require.EqualValues(t, 1, sum.GetExpCnt())

	_, err = p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: "da0"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "a DA with an exporter")
	_, err = p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: "da0", ExpName: "exp0"})
	require.NoError(t, err)
	_, err = p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: "da0"})
	require.NoError(t, err)
	sum, err = p.GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	require.NoError(t, err)
	require.Zero(t, sum.GetDaCnt())
	require.Equal(t, sum.GetTotalBytes(), sum.GetFreeBytes(), "deleting the DA frees its capacity")
}

func TestDefaultStoreIsEmbedded(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parse([]string{"--data-dir", dir, "--insecure"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "embedded://"+filepath.Join(dir, "etcd"), cfg.dbURI)
	// The default store really starts.
	addr, stop := startPortal(t, "--port", "0", "--data-dir", dir, "--log-level", "error", "--insecure")
	require.NotEmpty(t, addr)
	require.Zero(t, stop())
}

func TestBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"--port", "x"}, &stderr, nil))
	require.Equal(t, 1, run(context.Background(), []string{"--db-uri", "nosuch://", "--log-level", "off", "--insecure"}, &stderr, nil))
	require.Equal(t, 1, run(context.Background(), []string{"--db-uri", "memory://", "--tls-cert", "/nonexistent", "--tls-key", "/nonexistent",
		"--tls-ca", "/nonexistent", "--log-level", "off"}, &stderr, nil))
	require.Equal(t, 2, run(context.Background(), []string{"--db-uri", "memory://", "--tls-cert", "/nonexistent"}, &stderr, nil),
		"partial TLS flags")
	require.Equal(t, 2, run(context.Background(), []string{"--db-uri", "memory://", "--insecure", "--tls-cert", "x", "--tls-key", "y",
		"--tls-ca", "z"}, &stderr, nil), "--insecure with TLS flags")
}

// Without certificates and without --insecure the portal does not start,
// and says how to make certificates.
func TestRefusesToServeAnyone(t *testing.T) {
	var stderr bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"--db-uri", "memory://", "--port", "0"}, &stderr, nil))
	require.Contains(t, stderr.String(), "vda certs init")
	require.Contains(t, stderr.String(), "--role portal")
	require.Contains(t, stderr.String(), "--insecure")
}

// With certificates in $VDA_TLS_DIR (and no TLS flags, as the tutorial
// starts it) the portal serves mutual TLS with roles.
func TestDiscoversCertificates(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	server, err := ca.Issue(mtls.RolePortal, "portal")
	require.NoError(t, err)
	t.Setenv(mtls.EnvDir, filepath.Dir(server.CertFile))
	addr, stop := startPortal(t, "--port", "0", "--db-uri", "memory://", "--log-level", "error")
	ctx := context.Background()
	as := func(role mtls.Role) pb.PortalClient {
		c, err := ca.Issue(role, string(role))
		require.NoError(t, err)
		tc, err := c.ClientTLS()
		require.NoError(t, err)
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return pb.NewPortalClient(conn)
	}
	_, err = as(mtls.RoleAdmin).GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	require.NoError(t, err)
	_, err = as(mtls.RoleAgent).CreateDn(ctx, &pb.CreateDnRequest{DnName: "192.168.0.14:9720",
		DnListenerConf: `{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}`})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "an agent's certificate cannot drive the portal: %v", err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = pb.NewPortalClient(conn).GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "plaintext: %v", err)
	require.Zero(t, stop())
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

// TestPlacementAffinity: the portal registers its placement affinity (the
// flag's, or <short host name>@<listen address>) once it places a DA, and
// revokes it when it stops; an affinity with a '/' is refused.
func TestPlacementAffinity(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	host, _, _ = strings.Cut(host, ".")
	for _, tc := range []struct {
		flags []string
		want  func(addr string) string
	}{
		{[]string{"--placement-affinity", "portal-1"}, func(string) string { return "portal-1" }},
		{nil, func(addr string) string { return host + "@" + addr }},
	} {
		uri := backends()["sqlite"](t)
		args := append([]string{"--listener", "127.0.0.1", "--port", "0", "--db-uri", uri, "--log-level", "error", "--insecure"}, tc.flags...)
		addr, stop := startPortal(t, args...)
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		_, err = pb.NewPortalClient(conn).CreateDa(context.Background(), &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 1, DaSize: 32 << 20,
			DaConf: `{"stripe_count":1, "stripe_size_kb":64}`})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "no nodes yet")
		require.NoError(t, conn.Close())

		st, err := store.Open(context.Background(), uri)
		require.NoError(t, err)
		key := vda.KeyPlacer(tc.want(addr))
		require.Eventually(t, func() bool {
			_, err := st.Get(context.Background(), key)
			return err == nil
		}, time.Minute, time.Millisecond, "%s registered", key)
		require.Zero(t, stop())
		_, err = st.Get(context.Background(), key)
		require.ErrorIs(t, err, store.ErrNotFound, "revoked when the portal stopped")
		require.NoError(t, st.Close())
	}
	var stderr bytes.Buffer
	require.Equal(t, 1, run(context.Background(), []string{"--db-uri", "memory://", "--port", "0", "--insecure", "--log-level", "off",
		"--placement-affinity", "a/b"}, &stderr, nil))
}
