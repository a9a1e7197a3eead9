package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/logwatch"
)

func TestMetricsAddr(t *testing.T) {
	w := logwatch.New()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--port", "0", "--db-uri", "memory://", "--insecure", "--metrics-addr", "127.0.0.1:0"}, w, ready)
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case c := <-code:
		t.Fatalf("exited with %d", c)
	}
	defer func() { cancel(); require.Zero(t, <-code) }()
	var maddr string
	select {
	case maddr = <-w.Addr:
	case <-time.After(time.Minute):
		t.Fatal("no metrics address logged")
	}
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = pb.NewPortalClient(conn).GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	require.NoError(t, err)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + maddr + path)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	c, _ := get("/readyz")
	require.Equal(t, http.StatusOK, c, "the store answers")
	c, body := get("/metrics")
	require.Equal(t, http.StatusOK, c)
	require.Contains(t, body, `vda_portal_requests_total{code="OK",method="`+pb.Portal_GetClusterSummary_FullMethodName+`"} 1`)
	require.Contains(t, body, `vda_store_txn_duration_seconds_count{result="committed"} 1`, "the identity written at start")
	require.Contains(t, body, "vda_store_txn_conflicts_total 0")
	require.Contains(t, body, `vda_store_read_duration_seconds_count{op="list"}`, "the summary's reads")
}

func TestMetricsAddrInUse(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = lis.Close() }()
	var stderr bytes.Buffer
	require.Equal(t, 1, run(context.Background(), []string{"--port", "0", "--db-uri", "memory://", "--insecure",
		"--metrics-addr", lis.Addr().String(), "--log-level", "error"}, &stderr, nil))
	require.Contains(t, stderr.String(), "metrics")
}
