package spdkproc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "wrap"), 0o755))
	noexec := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(noexec, "wrap"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(noexec, "wrap", "spdk_tgt"), []byte("#!/bin/sh\n"), 0o644))
	good := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(good, "wrap"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(good, "wrap", "spdk_tgt"), []byte("#!/bin/sh\n"), 0o755))
	for _, tc := range []struct {
		name, dir string
		euid      int
		want      string // "" for no error
	}{
		{"unset", "", 0, "VDA_SPDK_DIR is not set"},
		{"no binary", dir, 0, "has no wrap/spdk_tgt"},
		{"not executable", noexec, 0, "is not executable"},
		{"not root", good, 1000, "needs root"},
		{"ok", good, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(tc.dir, tc.euid)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrUnavailable)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// recTB records what Require does instead of ending the test.
type recTB struct {
	testing.TB
	skipped, failed string
}

func (r *recTB) Helper()                           {}
func (r *recTB) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestRequireSkipsUnlessRequired(t *testing.T) {
	t.Setenv(EnvDir, "")
	t.Setenv(EnvRequire, "")
	r := &recTB{TB: t}
	Require(r)
	require.Contains(t, r.skipped, "VDA_SPDK_DIR is not set")
	require.Empty(t, r.failed)

	t.Setenv(EnvRequire, "1")
	r = &recTB{TB: t}
	Require(r)
	require.Contains(t, r.failed, "VDA_SPDK_DIR is not set")
	require.Contains(t, r.failed, "VDA_REQUIRE_SPDK=1")
	require.Empty(t, r.skipped)
}

// shortDir is a temporary directory with a short path, for unix sockets.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "spdkproc")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// TestTargetLifecycle starts a real spdk_tgt and checks what Start did
// (examine off, framework up), Pause and Resume, log-based crash
// detection, and a clean Stop.
func TestTargetLifecycle(t *testing.T) {
	Require(t)
	dir := shortDir(t)
	tg := StartT(t, Config{Name: "t1", Socket: filepath.Join(dir, "t1.sock")})
	require.Equal(t, filepath.Join(dir, "t1.sock.log"), tg.LogPath())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := tg.Dial(ctx)
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	v, err := c.SpdkGetVersion(ctx)
	require.NoError(t, err)
	require.Contains(t, v.Version, "v24.01")
	// bdev_set_options -d reached SPDK before init.
	var cfg []struct {
		Method string         `json:"method"`
		Params map[string]any `json:"params"`
	}
	require.NoError(t, c.Call(ctx, "framework_get_config", map[string]string{"name": "bdev"}, &cfg))
	examine := "bdev_set_options missing"
	for _, m := range cfg {
		if m.Method == "bdev_set_options" {
			examine = fmt.Sprint(m.Params["bdev_auto_examine"])
		}
	}
	require.Equal(t, "false", examine, "bdev_auto_examine")
	_, err = os.Stat(RuntimeDir(tg.PID()))
	require.NoError(t, err, "DPDK runtime dir of a running target")

	// A paused target answers nothing; resumed, it answers again.
	require.NoError(t, tg.Pause())
	require.Eventually(t, func() bool { return procState(tg.PID()) == "T" }, time.Minute, 10*time.Millisecond)
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = c.SpdkGetVersion(short)
	cancelShort()
	require.Error(t, err, "a paused spdk_tgt answered")
	require.NoError(t, tg.Resume())
	_, err = c.SpdkGetVersion(ctx)
	require.NoError(t, err)
	require.NoError(t, tg.Crashed())

	// A crash line in the log is a crash even while the process runs.
	f, err := os.OpenFile(tg.LogPath(), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("raid0.c: 128:raid0_submit_rw_request: *ERROR*: base bdev desc null for pd_idx 0\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	err = tg.Crashed()
	require.ErrorIs(t, err, ErrCrashed)
	require.Contains(t, err.Error(), "base bdev desc null")
	require.NotContains(t, err.Error(), "exited")

	require.NoError(t, tg.Stop(), "SIGTERM: a clean exit\n%s", tg.Tail(2000))
	require.True(t, tg.Requested())
	_, err = os.Stat(RuntimeDir(tg.PID()))
	require.ErrorIs(t, err, os.ErrNotExist, "DPDK runtime dir left behind")
}

// TestUnaskedExitIsACrash kills a target behind the harness's back.
func TestUnaskedExitIsACrash(t *testing.T) {
	Require(t)
	dir := shortDir(t)
	tg := StartT(t, Config{Name: "t2", Socket: filepath.Join(dir, "t2.sock"), CPUMask: "0x2"})
	require.NoError(t, tg.Crashed())
	require.NoError(t, syscall.Kill(tg.PID(), syscall.SIGKILL))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.Error(t, tg.Wait(ctx))
	err := tg.Crashed()
	require.ErrorIs(t, err, ErrCrashed)
	require.Contains(t, err.Error(), "exited without being asked to: signal: killed")
	_, err = os.Stat(RuntimeDir(tg.PID()))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestStartFailureKillsAndReports starts a target with too little memory:
// framework_start_init fails, and the process (which would keep running)
// is gone, with its log in the error.
func TestStartFailureKillsAndReports(t *testing.T) {
	Require(t)
	dir := shortDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tg, err := Start(ctx, Config{Name: "t3", Socket: filepath.Join(dir, "t3.sock"), MemMB: 256})
	require.Error(t, err)
	require.Nil(t, tg)
	require.Contains(t, err.Error(), "framework_start_init")
	require.Contains(t, err.Error(), "t3 (pid ")
}
