package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logWatch is a stderr that reports the metrics address once logged.
type logWatch struct {
	mu   sync.Mutex
	b    bytes.Buffer
	sent bool
	addr chan string // buffered: gets the address once
}

// metricsAddrRE matches the log line in text and in JSON (hclog sorts
// the JSON keys).
var metricsAddrRE = regexp.MustCompile(`serving metrics: addr=(\S+)|"@message":"serving metrics".*"addr":"([^"]+)"`)

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if m := metricsAddrRE.FindSubmatch(w.b.Bytes()); m != nil && !w.sent {
		w.sent = true
		w.addr <- string(m[1]) + string(m[2])
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestMetricsAddr(t *testing.T) {
	w := &logWatch{addr: make(chan string, 1)}
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
	case maddr = <-w.addr:
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
