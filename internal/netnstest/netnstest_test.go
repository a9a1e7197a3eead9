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
