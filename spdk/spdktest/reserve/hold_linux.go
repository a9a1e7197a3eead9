package reserve

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// holder is a socket bound to the address that never listens: it keeps
// the port, and connections to it are refused. It is bound without
// SO_REUSEPORT and gets it only afterwards, so that no later socket can
// bind beside it (not even another holder) except with SO_REUSEPORT, as
// the listeners of the Port do.
type holder struct{ fd int }

func hold(ap netip.AddrPort) (holder, netip.AddrPort, error) {
	fd, err := bindHolder(ap, false)
	if errors.Is(err, unix.EADDRINUSE) && ap.Port() != 0 {
		// Connections of an earlier listener on this port may linger in
		// TIME_WAIT (after a restart of the program that reserves it). An
		// ordinary listener binds beside them with SO_REUSEADDR, and so does
		// the holder then; it keeps out listeners, but while no listener of
		// its own is open, a socket with SO_REUSEADDR can bind beside it.
		fd, err = bindHolder(ap, true)
	}
	if err != nil {
		return holder{}, ap, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return holder{}, ap, err
	}
	port := ap.Port()
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		port = uint16(sa.Port)
	case *unix.SockaddrInet6:
		port = uint16(sa.Port)
	}
	return holder{fd: fd}, netip.AddrPortFrom(ap.Addr(), port), nil
}

// bindHolder returns a socket bound to ap (with SO_REUSEADDR if reuseAddr)
// that has SO_REUSEPORT from then on.
func bindHolder(ap netip.AddrPort, reuseAddr bool) (int, error) {
	family := unix.AF_INET
	if ap.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := bindSocket(fd, ap, reuseAddr); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func bindSocket(fd int, ap netip.AddrPort, reuseAddr bool) error {
	if reuseAddr {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
	}
	if ap.Addr().Is6() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())})
	}
	return unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())})
}

// listen opens a listening socket on the held port, beside the holder.
func (h holder) listen(ap netip.AddrPort) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	network := "tcp4"
	if ap.Addr().Is6() {
		network = "tcp6"
	}
	return lc.Listen(context.Background(), network, ap.String())
}

func (h holder) release() error { return unix.Close(h.fd) }
