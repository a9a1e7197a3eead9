//go:build !linux

package reserve

import (
	"net"
	"net/netip"
)

// holder holds nothing here: the port is bound to learn (or check) it, then
// freed, and each listen binds it again.
type holder struct{}

func hold(ap netip.AddrPort) (holder, netip.AddrPort, error) {
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return holder{}, ap, err
	}
	bound, err := netip.ParseAddrPort(ln.Addr().String())
	_ = ln.Close()
	if err != nil {
		return holder{}, ap, err
	}
	return holder{}, netip.AddrPortFrom(ap.Addr(), bound.Port()), nil
}

func (holder) listen(ap netip.AddrPort) (net.Listener, error) { return net.Listen("tcp", ap.String()) }

func (holder) release() error { return nil }
