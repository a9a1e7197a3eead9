package main

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/store/sqlstore"
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

func TestPortalServes(t *testing.T) {
	sqlite := (&url.URL{Scheme: "sqlite", Path: filepath.Join(t.TempDir(), "vda.db")}).String()
	_, err := sqlstore.CreateSchema(context.Background(), sqlite) // vda-db --action create
	require.NoError(t, err)
	for name, uri := range map[string]string{
		"memory":   "memory://",
		"embedded": (&url.URL{Scheme: "embedded", Path: filepath.Join(t.TempDir(), "etcd")}).String(),
		"sqlite":   sqlite,
	} {
		t.Run(name, func(t *testing.T) {
			addr, stop := startPortal(t, "--listener", "127.0.0.1", "--port", "0", "--db-uri", uri, "--log-level", "error")
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			p := pb.NewPortalClient(conn)
			ctx := context.Background()
			_, err = p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "cn0", CnListenerConf: `{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4430"}`})
			require.NoError(t, err)
			_, err = p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "cn0", CnListenerConf: `{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4430"}`})
			require.Equal(t, codes.AlreadyExists, status.Code(err))
			sum, err := p.GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
			require.NoError(t, err)
			require.EqualValues(t, 1, sum.GetCnCnt())
			require.NoError(t, conn.Close())
			require.Zero(t, stop())
		})
	}
}

func TestDefaultStoreIsEmbedded(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parse([]string{"--data-dir", dir}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "embedded://"+filepath.Join(dir, "etcd"), cfg.dbURI)
	// The default store really starts.
	addr, stop := startPortal(t, "--port", "0", "--data-dir", dir, "--log-level", "error")
	require.NotEmpty(t, addr)
	require.Zero(t, stop())
}

func TestBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"--port", "x"}, &stderr, nil))
	require.Equal(t, 1, run(context.Background(), []string{"--db-uri", "nosuch://", "--log-level", "off"}, &stderr, nil))
	require.Equal(t, 1, run(context.Background(), []string{"--db-uri", "memory://", "--tls-cert", "/nonexistent", "--log-level", "off"}, &stderr, nil))
}
