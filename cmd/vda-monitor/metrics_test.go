package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	select {
	case <-ready:
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
	get := func(t require.TestingT, path string) (int, string) {
		resp, err := http.Get("http://" + maddr + path)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	// A live member with a round done, but on a store no portal used:
	// not ready, and why (TestSharedDefaultStore has the ready case).
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		c, body := get(ct, "/readyz")
		require.Equal(ct, http.StatusServiceUnavailable, c, body)
		require.Contains(ct, body, "store has no cluster identity: is the portal on this store?")
	}, time.Minute, 20*time.Millisecond)
	require.Contains(t, w.String(), "store holds no cluster identity")
	c, body := get(t, "/metrics")
	require.Equal(t, http.StatusOK, c)
	require.Contains(t, body, "vda_cluster_nodes 0")
	require.Contains(t, body, "# TYPE vda_monitor_failover_duration_seconds histogram")
	require.Contains(t, body, "# TYPE vda_store_txn_duration_seconds histogram")
	require.Contains(t, body, `vda_store_txn_duration_seconds_count{result="committed"}`, "membership writes")
	require.Contains(t, body, `vda_store_read_duration_seconds_count{op="get"}`, "the identity reads")
}
