package netnstest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary act as a helper inside a namespace.
func TestMain(m *testing.M) {
	switch os.Getenv("NETNSTEST_HELPER") {
	case "":
		os.Exit(m.Run())
	case "listen":
		os.Exit(helperListen(os.Getenv("NETNSTEST_ADDR")))
	case "dial":
		os.Exit(helperDial(os.Getenv("NETNSTEST_ADDR")))
	}
}

// helperListen accepts one connection and writes "hello" to it.
func helperListen(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("listening")
	c, err := ln.Accept()
	if err != nil {
		return 1
	}
	_, _ = c.Write([]byte("hello\n"))
	_ = c.Close()
	return 0
}

func helperDial(addr string) int {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 1
	}
	fmt.Print(line)
	return 0
}

func helper(ctx context.Context, h *Host, mode, addr string) *osexec.Cmd {
	cmd := h.Command(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETNSTEST_HELPER="+mode, "NETNSTEST_ADDR="+addr)
	return cmd
}

func TestTwoHostsTalkOverTheBridge(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := New(t)
	a := n.AddHost("a", "192.168.0.14/24")
	b := n.AddHost("b", "192.168.0.15/24")
	require.Equal(t, "192.168.0.14", a.IP)
	require.Same(t, b, n.Host("b"))

	srv := helper(ctx, a, "listen", "192.168.0.14:4420")
	out, err := srv.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "listener did not start")
	require.Equal(t, "listening\n", line)

	got, err := helper(ctx, b, "dial", "192.168.0.14:4420").Output()
	require.NoError(t, err, string(got))
	require.Equal(t, "hello\n", string(got))
	require.NoError(t, srv.Wait())

	// A cut host is unreachable.
	require.NoError(t, n.Cut(a))
	got, err = helper(ctx, b, "dial", "192.168.0.14:4420").CombinedOutput()
	require.Error(t, err, string(got))
	require.NoError(t, n.Restore(a))
}

// startListener runs helperListen on h at addr and waits until it listens.
func startListener(t *testing.T, ctx context.Context, h *Host, addr string) *osexec.Cmd {
	t.Helper()
	srv := helper(ctx, h, "listen", addr)
	out, err := srv.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "listener did not start")
	require.Equal(t, "listening\n", line)
	return srv
}

// netnsOfThreads returns the network namespace of every thread of this
// process.
func netnsOfThreads(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	out := map[string]string{}
	for _, task := range tasks {
		ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err == nil { // a thread may have exited meanwhile
			out[task.Name()] = ns
		}
	}
	return out
}

func TestDialContextFromTheTestProcess(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	n := New(t)
	a := n.AddHost("a", "192.168.0.14/24")
	b := n.AddHost("b", "192.168.0.15/24")

	// a's own loopback, which only a process inside a can reach.
	startListener(t, ctx, a, "127.0.0.1:4420")
	c, err := a.DialContext(ctx, "tcp", "127.0.0.1:4420")
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "hello\n", line)
	require.NoError(t, c.Close())

	// Across the bridge, from b to a, many times over from many goroutines:
	// the first one to connect gets the greeting, and no thread is left in
	// another namespace.
	startListener(t, ctx, a, "192.168.0.14:4421")
	conns := make(chan net.Conn, 16)
	for range 16 {
		go func() {
			c, err := b.DialContext(ctx, "tcp", "192.168.0.14:4421")
			if err != nil {
				conns <- nil
				return
			}
			conns <- c
		}()
	}
	greeted := 0
	for range 16 {
		c := <-conns
		if c == nil {
			continue // the helper accepts one connection, later ones may be refused
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if line, _ := bufio.NewReader(c).ReadString('\n'); line == "hello\n" {
			greeted++
		}
		_ = c.Close()
	}
	require.Equal(t, 1, greeted)
	for task, ns := range netnsOfThreads(t) {
		require.Equal(t, home, ns, "thread %s", task)
	}

	_, err = a.DialContext(ctx, "tcp", "localhost:4420")
	require.ErrorContains(t, err, "want an IP address")
	_, err = a.DialContext(ctx, "tcp", "127.0.0.1:4499")
	require.ErrorContains(t, err, "connection refused", "nothing listens there inside a")
	ghost := &Host{Name: "ghost", NS: "vda-no-such-namespace"}
	_, err = ghost.DialContext(ctx, "tcp", "127.0.0.1:4420")
	require.Error(t, err)
	for task, ns := range netnsOfThreads(t) {
		require.Equal(t, home, ns, "thread %s", task)
	}
}
