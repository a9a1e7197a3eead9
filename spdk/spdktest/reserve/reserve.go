package reserve

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// Sentinel errors of the package.
var (
	// ErrListening is returned by Listen while the previous listener of the
	// port is open; it also matches syscall.EADDRINUSE.
	ErrListening = errors.New("reserve: a listener is open on the port")
	// ErrClosed is returned by Listen after Close.
	ErrClosed = errors.New("reserve: port released")
	// ErrAddr is returned by TCP for an address that is not an IP literal
	// or a port out of range.
	ErrAddr = errors.New("reserve: invalid address")
)

// Port is a TCP port held on one IP address until Close. It is safe for
// concurrent use.
type Port struct {
	addr netip.AddrPort

	mu     sync.Mutex
	h      holder
	open   *listener // the listener Listen returned, until it is closed
	closed bool
}

// TCP reserves port on host, an IP address literal such as "127.0.0.1" or
// "::1"; port 0 picks a free one. It fails if the port is taken.
func TCP(host string, port int) (*Port, error) {
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return nil, fmt.Errorf("%w: host %q is not an IP address", ErrAddr, host)
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrAddr, port)
	}
	h, bound, err := hold(netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	if err != nil {
		return nil, fmt.Errorf("reserve: %s: %w", net.JoinHostPort(ip.Unmap().String(), fmt.Sprint(port)), err)
	}
	return &Port{addr: bound, h: h}, nil
}

// TB is what ForTest needs of a test: *testing.T and *testing.B have it
// (the package does not link testing).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// ForTest reserves a free port on host until t ends, failing t if it cannot.
func ForTest(t TB, host string) *Port {
	t.Helper()
	p, err := TCP(host, 0)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr is the reserved address.
func (p *Port) Addr() netip.AddrPort { return p.addr }

// String is the reserved address as host:port.
func (p *Port) String() string { return p.addr.String() }

// Listen listens on the reserved address. Only one listener may be open at
// a time: until it is closed, Listen fails with ErrListening.
func (p *Port) Listen() (net.Listener, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("%w: %s", ErrClosed, p.addr)
	}
	if p.open != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrListening, p.addr, syscall.EADDRINUSE)
	}
	ln, err := p.h.listen(p.addr)
	if err != nil {
		return nil, fmt.Errorf("reserve: listen %s: %w", p.addr, err)
	}
	p.open = &listener{Listener: ln, p: p}
	return p.open, nil
}

// Close closes the open listener, if any, and releases the port. It is
// idempotent.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	open := p.open
	p.mu.Unlock()
	var errs []error
	if open != nil {
		errs = append(errs, open.Close())
	}
	return errors.Join(append(errs, p.h.release())...)
}

// listener is a listener of a Port; closing it lets the Port listen again.
type listener struct {
	net.Listener
	p *Port
}

func (l *listener) Close() error {
	err := l.Listener.Close()
	l.p.mu.Lock()
	if l.p.open == l {
		l.p.open = nil
	}
	l.p.mu.Unlock()
	return err
}
