package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/logwatch"
	"github.com/vda-io/vda/internal/testproc"
	"github.com/vda-io/vda/monitor"
	"github.com/vda-io/vda/store"
)

// buildPortal builds the real vda-portal binary into dir.
func buildPortal(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build vda-portal: ", err)
	}
	bin := filepath.Join(dir, "vda-portal")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/vda-io/vda/cmd/vda-portal").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// jsonLines decodes every line of a --log-format json log; a line that is
// not one JSON object fails the test.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "not a JSON line: %q", sc.Text())
		out = append(out, m)
	}
	return out
}

// TestSharedDefaultStore: vda-portal and vda-monitor started without
// --db-uri on one machine (one --data-dir) use one store: the portal's
// embedded etcd, which the monitor reaches on its unix socket. The portal
// writes the store's identity, the monitor is ready on it, and refuses it
// when told to expect another cluster. Both log JSON on request, and the
// portal reports readiness to a service manager (sd_notify).
func TestSharedDefaultStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs vda-portal; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildPortal(t, dir)
	data := filepath.Join(dir, "data")

	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify.sock"), Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = notify.Close() })
	cmd := exec.Command(bin, "--listener", "127.0.0.1", "--port", "0", "--data-dir", data, "--insecure", "--log-format", "json")
	cmd.Env = append(os.Environ(), cmdrun.EnvNotifySocket+"="+filepath.Join(dir, "notify.sock"))
	portalLog := filepath.Join(dir, "portal.log")
	portal := testproc.StartT(t, testproc.Spec{Name: "vda-portal", Cmd: cmd, LogPath: portalLog})

	// READY=1 once it serves (a read deadline only bounds a hang).
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 256)
		_ = notify.SetReadDeadline(time.Now().Add(3 * time.Minute))
		n, err := notify.Read(buf)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	select {
	case msg := <-got:
		require.Equal(t, "READY=1", msg, "portal log: %s", portal.Tail(4000))
	case <-portal.Done():
		t.Fatalf("vda-portal exited: %v: %s", portal.Err(), portal.Tail(4000))
	}

	// The store as the monitor finds it by default.
	uri, err := cmdrun.LocalStoreURI(data)
	require.NoError(t, err)
	ctx := context.Background()
	st, err := store.Open(ctx, uri)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	id, err := vda.ReadIdentity(ctx, st)
	require.NoError(t, err, "the portal wrote the identity")
	require.NoError(t, id.Check(""))

	// The portal's log is JSON and names the cluster.
	var logged bool
	for _, l := range jsonLines(t, testproc.Tail(portalLog, 1<<20)) {
		if l["@message"] == "store identity" {
			logged = true
			require.Equal(t, id.ClusterID, l["cluster_id"])
			require.Equal(t, true, l["written"])
		}
	}
	require.True(t, logged, "portal log: %s", portal.Tail(4000))

	// The monitor, with no --db-uri, joins that store and becomes ready.
	w := logwatch.New()
	mctx, cancel := context.WithCancel(ctx)
	code := make(chan int, 1)
	go func() {
		code <- run(mctx, []string{"--port", "0", "--data-dir", data, "--insecure", "--id", "m-shared",
			"--metrics-addr", "127.0.0.1:0", "--log-format", "json"}, w, nil)
	}()
	stopped := false
	stop := func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		return <-code
	}
	t.Cleanup(func() { stop() })
	var maddr string
	select {
	case maddr = <-w.Addr:
	case c := <-code:
		stopped = true
		t.Fatalf("vda-monitor exited with %d: %s", c, w.String())
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		resp, err := http.Get("http://" + maddr + "/readyz")
		require.NoError(ct, err)
		_ = resp.Body.Close()
		require.Equal(ct, http.StatusOK, resp.StatusCode)
	}, 2*time.Minute, 20*time.Millisecond, "ready on the portal's store")
	res, err := st.List(ctx, monitor.MembersPrefix, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, res.KVs, 1, "the monitor is a member of the portal's store")
	require.Contains(t, res.KVs[0].Key, "m-shared")
	require.Zero(t, stop())
	var monIdentity bool
	for _, l := range jsonLines(t, w.String()) {
		if l["@message"] == "store identity" {
			monIdentity = l["cluster_id"] == id.ClusterID
		}
		require.NotContains(t, l["@message"], "cluster identity", "no identity warning on the portal's store: %v", l)
	}
	require.True(t, monIdentity, "the monitor logs the cluster it drives: %s", w.String())

	// Told to expect another cluster, it refuses the store.
	var stderr syncBuffer
	other := "0123456789abcdef0123456789abcdef"
	require.Equal(t, 1, run(ctx, []string{"--port", "0", "--data-dir", data, "--insecure", "--cluster-id", other}, &stderr, nil))
	require.Contains(t, stderr.String(), "the store belongs to cluster "+id.ClusterID+", not "+other)
	// And the right one is accepted.
	addr, stopMon := startMonitor(t, "--port", "0", "--data-dir", data, "--insecure", "--cluster-id", id.ClusterID)
	require.NotEmpty(t, addr)
	require.Zero(t, stopMon())

	require.NoError(t, portal.Stop())
	if err := portal.Err(); err != nil {
		var ee *exec.ExitError
		require.False(t, errors.As(err, &ee) && ee.ExitCode() != 0, "vda-portal exit: %v: %s", err, portal.Tail(4000))
	}
}
