package spdktest

import (
	"bytes"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func createSparse(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func TestFaultError(t *testing.T) {
	srv := NewServer(t)
	srv.Inject("bdev_malloc_create", Fault{Error: &Error{Code: -12, Message: "Cannot allocate memory"}, Times: 1})
	rc := dialRaw(t, srv.SockPath())
	require.Equal(t, "Cannot allocate memory", rc.fails(-12, "bdev_malloc_create", map[string]any{"name": "m", "block_size": 512, "num_blocks": 8}))
	rc.fails(-19, "bdev_get_bdevs", map[string]any{"name": "m"}) // not executed
	rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 512, "num_blocks": 8})
	require.Equal(t, 2, srv.RPCCount("bdev_malloc_create"))
}

func TestFaultLatencyKeepsOrder(t *testing.T) {
	srv := NewServer(t)
	srv.Inject("spdk_get_version", Fault{Latency: 30 * time.Millisecond})
	rc := dialRaw(t, srv.SockPath())
	start := time.Now()
	rc.send(`{"method":"spdk_get_version","id":1}{"method":"bdev_get_bdevs","id":2}`)
	require.Contains(t, rc.line(), `"id":1,`)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	require.Contains(t, rc.line(), `"id":2,`)
}

func TestFaultHangUntilCrash(t *testing.T) {
	srv := NewServer(t)
	srv.Inject("bdev_malloc_create", Fault{Hang: true})
	rc := dialRaw(t, srv.SockPath())
	rc.send(`{"method":"bdev_malloc_create","id":1,"params":{"name":"m","block_size":512,"num_blocks":8}}`)
	got := make(chan error, 1)
	go func() {
		_, err := rc.r.ReadByte()
		got <- err
	}()
	// Other connections still work, and the hung request did not run.
	other := dialRaw(t, srv.SockPath())
	require.Eventually(t, func() bool { return srv.RPCCount("bdev_malloc_create") == 1 }, 5*time.Second, time.Millisecond)
	other.fails(-19, "bdev_get_bdevs", map[string]any{"name": "m"})
	select {
	case err := <-got:
		t.Fatalf("hung request answered: %v", err)
	default:
	}
	srv.Crash()
	require.ErrorIs(t, <-got, io.EOF)
}

func TestFaultDropReplyAppliesEffect(t *testing.T) {
	srv := NewServer(t)
	srv.Inject("bdev_malloc_create", Fault{DropReply: true, Times: 1})
	rc := dialRaw(t, srv.SockPath())
	rc.send(`{"method":"bdev_malloc_create","id":1,"params":{"name":"m","block_size":512,"num_blocks":8}}`)
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.r.ReadByte()
	require.ErrorIs(t, err, io.EOF)
	other := dialRaw(t, srv.SockPath())
	other.ok("bdev_get_bdevs", map[string]any{"name": "m"})
	other.fails(-17, "bdev_malloc_create", map[string]any{"name": "m", "block_size": 512, "num_blocks": 8})
}

func TestCrashLosesVolatileStateKeepsFiles(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	path := t.TempDir() + "/aio.img"
	require.NoError(t, createSparse(path, 8<<20))
	rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 16})
	rc.ok("bdev_aio_create", map[string]any{"name": "a", "filename": path, "block_size": 4096})
	pattern := bytes.Repeat([]byte("vda!"), 1024)
	for _, name := range []string{"m", "a"} {
		_, err := srv.bdevDevice(t, name).WriteAt(pattern, 4096)
		require.NoError(t, err)
	}
	srv.Crash()
	_, err := dialRawErr(srv.SockPath())
	require.Error(t, err, "the socket is gone after a crash")
	require.NoError(t, srv.Restart(false))
	rc = dialRaw(t, srv.SockPath())
	rc.fails(-19, "bdev_get_bdevs", map[string]any{"name": "m"})
	rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 16})
	rc.ok("bdev_aio_create", map[string]any{"name": "a", "filename": path, "block_size": 4096})
	buf := make([]byte, len(pattern))
	_, err = srv.bdevDevice(t, "m").ReadAt(buf, 4096)
	require.NoError(t, err)
	require.Equal(t, make([]byte, len(pattern)), buf, "malloc data is volatile")
	_, err = srv.bdevDevice(t, "a").ReadAt(buf, 4096)
	require.NoError(t, err)
	require.Equal(t, pattern, buf, "aio data lives in the file")
}

func TestKillInstanceAndRestart(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	rc.fails(-32602, "spdk_kill_instance", map[string]any{"sig_name": "SIGFOO"})
	rc.ok("spdk_kill_instance", map[string]any{"sig_name": "SIGTERM"})
	select {
	case <-srv.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("instance did not exit")
	}
	require.NoError(t, srv.Restart(true))
	rc = dialRaw(t, srv.SockPath())
	require.Equal(t, msgAfterInit, rc.fails(-1, "bdev_get_bdevs", nil))
	select {
	case <-srv.Exited():
		t.Fatal("Exited must be re-armed by Restart")
	default:
	}
}

// A Restart right after the instance stopped serves on the socket path:
// the old instance's listener, closed as it stops in the background (a
// kill, or a crash the fake found), must not unlink the new instance's
// socket (a replay under load once failed to dial after a crash).
func TestRestartRightAfterStopServes(t *testing.T) {
	srv := NewServer(t)
	for i := range 200 {
		rc := dialRaw(t, srv.SockPath())
		if i%2 == 0 {
			rc.ok("spdk_kill_instance", map[string]any{"sig_name": "SIGTERM"})
			<-srv.Exited()
		} else {
			// SPDK v24.01 dies of SIGFPE on this (max_io_size 0 clamps io_unit_size to 0).
			rc.send(`{"jsonrpc":"2.0","id":1,"method":"nvmf_create_transport","params":{"trtype":"TCP","max_io_size":0}}`)
			_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := rc.r.ReadByte()
			require.ErrorIs(t, err, io.EOF, "the fake dies without a reply")
		}
		require.NoError(t, srv.Restart(false))
		c, err := dialRawErr(srv.SockPath())
		require.NoError(t, err, "restart %d", i)
		_ = c.Close()
		_ = rc.c.Close()
	}
	require.Len(t, srv.Crashes(), 100)
}

func dialRawErr(sock string) (io.Closer, error) {
	c, err := netDialUnix(sock)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// bdevDevice returns the data path of a bdev of the running instance.
func (s *Server) bdevDevice(t testing.TB, name string) blockdev.Device {
	t.Helper()
	s.mu.Lock()
	in := s.cur
	s.mu.Unlock()
	require.NotNil(t, in)
	in.st.mu.Lock()
	defer in.st.mu.Unlock()
	b := in.st.lookup(name)
	require.NotNil(t, b, "bdev %s", name)
	return b.device()
}

func TestServeStopsOnKill(t *testing.T) {
	dir, err := os.MkdirTemp("", "spdk")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	tg, err := New(Config{SockPath: dir + "/s.sock"})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- tg.Serve(t.Context()) }()
	rc := dialRaw(t, tg.SockPath())
	rc.ok("spdk_kill_instance", map[string]any{"sig_name": "SIGINT"})
	require.NoError(t, <-done)
	_, err = os.Stat(tg.SockPath())
	require.True(t, os.IsNotExist(err), "socket removed on exit")
	require.ErrorIs(t, tg.Restart(false), ErrClosed)
	require.True(t, strings.HasSuffix(tg.SockPath(), "s.sock"))
}

func netDialUnix(sock string) (io.Closer, error) { return net.Dial("unix", sock) }
