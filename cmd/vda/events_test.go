package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
)

// syncBuffer is a bytes.Buffer a running command writes while the test
// reads it.
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

// started runs the CLI in the background; wait returns its exit status
// and output.
type started struct {
	out, err *syncBuffer
	cancel   context.CancelFunc
	code     chan int
}

func start(args ...string) *started {
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{out: &syncBuffer{}, err: &syncBuffer{}, cancel: cancel, code: make(chan int, 1)}
	go func() { s.code <- run(ctx, args, s.out, s.err) }()
	return s
}

func (s *started) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-s.code:
		return code
	case <-time.After(time.Minute):
		t.Fatalf("the command did not end; stdout %s, stderr %s", s.out, s.err)
		return 0
	}
}

func eventually(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	require.Eventually(t, cond, time.Minute, 10*time.Millisecond, "%s", msg())
}

func setStatus(t *testing.T, st store.Store, specKey string, s vda.Status) {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	_, err = st.Txn(context.Background(), store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(specKey), Value: b}}})
	require.NoError(t, err)
}

func TestEvents(t *testing.T) {
	addr, _, st := startPortalStore(t, portal.Config{})
	rev, err := st.Revision(context.Background())
	require.NoError(t, err)
	from := strconv.FormatInt(rev+1, 10)
	text := start("--addr-port", addr, "events", "--from-revision", from)
	js := start("--addr-port", addr, "-o", "json", "events", "--from-revision", from, "--kind", "cn")
	for _, line := range tutorial.Lines()[:8] { // nodes, da0 and exp0
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	setStatus(t, st, vda.KeyCN("192.168.0.16:9820"), vda.Status{Health: vda.HealthFailed, ErrorMsg: "health probes refused"})
	setStatus(t, st, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, AppliedSizeBytes: 32 << 20})
	_, errOut, code := runCLI(t, "--addr-port", addr, "da", "switchover", "--da-name", "da0", "--cntlr-idx", "1")
	require.Zero(t, code, errOut)

	eventually(t, func() bool { return strings.Contains(text.out.String(), "da da0 switchover") }, text.out.String)
	text.cancel()
	require.Zero(t, text.wait(t), text.err.String())
	out := text.out.String()
	for _, want := range []string{" dn 192.168.0.14:9720 created\n", " pd 192.168.0.14:9720/pd0 created\n",
		" cn 192.168.0.16:9820 health unknown -> failed: health probes refused\n", " da da0 created\n", " exp da0/exp0 created\n",
		" da da0 health unknown -> healthy (0 of 4 parts healthy), volume at 33554432 bytes\n",
		" da da0 switchover primary controller 0 on 192.168.0.16:9820 -> controller 1 on 192.168.0.17:9820, epoch 2\n"} {
		require.Contains(t, out, want)
	}
	require.True(t, strings.HasPrefix(out, from+" dn "), out)

	eventually(t, func() bool { return strings.Contains(js.out.String(), `"type":"health"`) }, js.out.String)
	js.cancel()
	require.Zero(t, js.wait(t), js.err.String())
	lines := strings.Split(strings.TrimSpace(js.out.String()), "\n")
	for _, line := range lines {
		var ev struct{ Kind, Type, Name, Health string }
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		require.Equal(t, "cn", ev.Kind)
	}
	require.Contains(t, lines[len(lines)-1], `"health":"failed"`)

	_, errOut, code = runCLI(t, "--addr-port", addr, "events", "--kind", "vd")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "InvalidArgument")
}

func TestDAGetWatch(t *testing.T) {
	addr, _, st := startPortalStore(t, portal.Config{})
	for _, line := range tutorial.Lines()[:7] { // nodes and da0
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	w := start("--addr-port", addr, "da", "get", "--da-name", "da0", "--watch")
	eventually(t, func() bool { return strings.Contains(w.out.String(), `"da_name": "da0"`) }, w.out.String)
	setStatus(t, st, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy})
	eventually(t, func() bool { return strings.Contains(w.out.String(), `"health": "healthy"`) }, w.out.String)
	require.Equal(t, 2, strings.Count(w.out.String(), `"da_name": "da0"`), "printed again on the change")
	_, errOut, code := runCLI(t, "--addr-port", addr, "da", "delete", "--da-name", "da0")
	require.Zero(t, code, errOut)
	require.Equal(t, portalcli.ExitError, w.wait(t))
	require.Contains(t, w.err.String(), `disk array "da0" was deleted`)
}

// TestWait: --wait returns once the object is ready or gone, or fails
// after its timeout with what the object looked like.
func TestWait(t *testing.T) {
	addr, _, st := startPortalStore(t, portal.Config{})
	lines := tutorial.Lines()
	for _, line := range lines[:6] { // nodes
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	// Ready: the command waits (its progress says so) until the monitor
	// reports the array healthy, then prints it.
	w := start(append(cliArgs(t, lines[6], addr), "--wait=1m")...)
	eventually(t, func() bool {
		return strings.Contains(w.err.String(), "waiting for disk array da0 to be healthy: unknown\n")
	}, w.err.String)
	setStatus(t, st, vda.KeyDA("da0"), vda.Status{Health: vda.HealthDegraded, ErrorMsg: "controller 1: connecting"})
	eventually(t, func() bool {
		return strings.Contains(w.err.String(), "waiting for disk array da0 to be healthy: degraded: controller 1: connecting (0 of 4 parts healthy)\n")
	}, w.err.String)
	setStatus(t, st, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy})
	require.Zero(t, w.wait(t), w.err.String())
	require.Contains(t, w.out.String(), `"health": "healthy"`)

	// Not ready in time: the error says what the exporter looked like.
	_, errOut, code := runCLI(t, append(cliArgs(t, lines[7], addr), "--wait=200ms")...)
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "DeadlineExceeded: exporter exp0 of disk array da0 is not healthy on every controller after 200ms: unknown")
	setStatus(t, st, vda.KeyExp("da0", "exp0"), vda.Status{Health: vda.HealthDegraded, ErrorMsg: "controller 1: no listener"})
	_, errOut, code = runCLI(t, "--addr-port", addr, "exp", "modify", "--da-name", "da0", "--exp-name", "exp0",
		"--description", "x", "--wait=200ms")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "after 200ms: degraded: controller 1: no listener")

	// Gone: deletes wait for the object to disappear.
	out, errOut, code := runCLI(t, "--addr-port", addr, "exp", "delete", "--da-name", "da0", "--exp-name", "exp0", "--wait")
	require.Zero(t, code, errOut)
	require.Equal(t, "{}\n", out)
	snap := start("--addr-port", addr, "snap", "create", "--da-name", "da0", "--snap-name", "s0", "--wait=1m")
	eventually(t, func() bool { return strings.Contains(snap.err.String(), "waiting for snapshot s0") }, snap.err.String)
	setStatus(t, st, vda.KeySnap("da0", "s0"), vda.Status{Health: vda.HealthHealthy})
	require.Zero(t, snap.wait(t), snap.err.String())
	require.Contains(t, snap.out.String(), `"ready": true`)
	_, errOut, code = runCLI(t, "--addr-port", addr, "snap", "delete", "--da-name", "da0", "--snap-name", "s0", "--wait")
	require.Zero(t, code, errOut)
	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "delete", "--da-name", "da0", "--wait=1m")
	require.Zero(t, code, errOut)

	// A refused request does not wait.
	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "delete", "--da-name", "da0", "--wait=1m")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "NotFound")
	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "delete", "--da-name", "da0", "--wait=-1s")
	require.Equal(t, portalcli.ExitUsage, code, errOut)
}
