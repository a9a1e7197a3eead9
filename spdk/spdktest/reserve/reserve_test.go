package reserve_test

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// refused requires that a connection to addr is refused, as by a host
// where nothing listens.
func refused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_ = c.Close()
	}
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
}

// served requires that a listener accepts a connection to addr.
func served(t *testing.T, ln net.Listener) {
	t.Helper()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, <-accepted)
}

func TestPortIsHeldAcrossListeners(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ports are held between listeners on Linux only")
	}
	p := reserve.ForTest(t, "127.0.0.1")
	require.NotZero(t, p.Addr().Port())
	require.Equal(t, "127.0.0.1", p.Addr().Addr().String())
	addr := p.String()

	refused(t, addr)
	_, err := net.Listen("tcp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "nobody else can bind a reserved port")
	// Nor reserve it again (in this process or another).
	twice := func() {
		t.Helper()
		q, err := reserve.TCP("127.0.0.1", int(p.Addr().Port()))
		if err == nil {
			_ = q.Close()
		}
		require.ErrorIs(t, err, syscall.EADDRINUSE)
	}
	twice()

	for range 3 {
		ln, err := p.Listen()
		require.NoError(t, err)
		require.Equal(t, addr, ln.Addr().String())
		served(t, ln)
		_, err = p.Listen()
		require.ErrorIs(t, err, reserve.ErrListening)
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		_, err = net.Listen("tcp", addr)
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		twice()

		require.NoError(t, ln.Close())
		require.Error(t, ln.Close(), "a listener closes once")
		refused(t, addr)
		_, err = net.Listen("tcp", addr)
		require.ErrorIs(t, err, syscall.EADDRINUSE, "the port stays held without a listener")
		twice() // also with the served connection in TIME_WAIT
	}
}

func TestCloseReleasesThePort(t *testing.T) {
	p, err := reserve.TCP("127.0.0.1", 0)
	require.NoError(t, err)
	ln, err := p.Listen()
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "idempotent")
	_, err = ln.Accept()
	require.ErrorIs(t, err, net.ErrClosed, "Close closes the open listener")
	_, err = p.Listen()
	require.ErrorIs(t, err, reserve.ErrClosed)

	// The port is free again: it can be reserved by number.
	q, err := reserve.TCP("127.0.0.1", int(p.Addr().Port()))
	require.NoError(t, err)
	defer q.Close()
	require.Equal(t, p.Addr(), q.Addr())
}

// A port asked for by number is held even while connections of an
// earlier ordinary listener on it wait in TIME_WAIT (a program that
// reserves its old port again after a restart).
func TestReserveByNumberAfterTimeWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	s, err := ln.Accept()
	require.NoError(t, err)
	require.NoError(t, s.Close()) // the server closes first: TIME_WAIT on its port
	_, _ = c.Read(make([]byte, 1))
	require.NoError(t, c.Close())
	// Until it is reserved again the port is free but for the TIME_WAIT
	// connection, which keeps the kernel from handing it out to a bind to
	// port 0 or an outgoing connection meanwhile.
	require.NoError(t, ln.Close())

	p, err := reserve.TCP("127.0.0.1", port)
	require.NoError(t, err)
	defer p.Close()
	l2, err := p.Listen()
	require.NoError(t, err)
	served(t, l2)
	_, err = net.Listen("tcp", p.String())
	require.ErrorIs(t, err, syscall.EADDRINUSE, "a listener keeps everyone else out")
	require.NoError(t, l2.Close())
	refused(t, p.String())
}

func TestIPv6(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here (%v); enable ::1 to run this test", err)
	}
	_ = probe.Close()
	p := reserve.ForTest(t, "::1")
	ln, err := p.Listen()
	require.NoError(t, err)
	defer ln.Close()
	require.Equal(t, net.JoinHostPort("::1", strconv.Itoa(int(p.Addr().Port()))), ln.Addr().String())
	served(t, ln)
}

func TestInvalidAddresses(t *testing.T) {
	for _, tc := range []struct {
		host string
		port int
	}{{"localhost", 0}, {"", 0}, {"127.0.0.1", -1}, {"127.0.0.1", 65536}, {"fe80::1%eth0", 0}, {"10.0.0.1:80", 0}} {
		_, err := reserve.TCP(tc.host, tc.port)
		require.ErrorIs(t, err, reserve.ErrAddr, "%q %d", tc.host, tc.port)
	}
	// An address that is not this host's cannot be bound.
	_, err := reserve.TCP("192.0.2.1", 0)
	require.Error(t, err)
	require.False(t, errors.Is(err, reserve.ErrAddr))
}
