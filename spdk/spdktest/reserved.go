package spdktest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// Reserve holds a free TCP port on host (an IP address literal such as
// "127.0.0.1") for this target until Close, and returns its transport id
// for nvmf_subsystem_add_listener. The target listens on it when a
// subsystem adds a listener there, and across Crash and Restart nobody
// else can take it (see Config.Reserved).
func (t *Target) Reserve(host string) (fabric.TransportID, error) {
	p, err := reserve.TCP(host, 0)
	if err != nil {
		return fabric.TransportID{}, fmt.Errorf("spdktest: %w", err)
	}
	if err := t.addReserved(p, true); err != nil {
		_ = p.Close()
		return fabric.TransportID{}, err
	}
	return reservedTrid(p), nil
}

// reservedTrid is the TCP transport id of p's address.
func reservedTrid(p *reserve.Port) fabric.TransportID {
	fam := "ipv4"
	if p.Addr().Addr().Is6() {
		fam = "ipv6"
	}
	return fabric.TransportID{TrType: "tcp", AdrFam: fam, TrAddr: p.Addr().Addr().String(),
		TrSvcID: fmt.Sprint(p.Addr().Port())}
}

// addReserved makes the target listen through p on p's address; the
// target closes p in Close if owned.
func (t *Target) addReserved(p *reserve.Port, owned bool) error {
	t.resMu.Lock()
	defer t.resMu.Unlock()
	if t.resClosed {
		return ErrClosed
	}
	if _, dup := t.reserved[p.Addr()]; dup {
		return fmt.Errorf("%w: %s reserved twice", ErrConfig, p.Addr())
	}
	t.reserved[p.Addr()] = p
	if owned {
		t.owned = append(t.owned, p)
	}
	return nil
}

// listenTCP is the fabric's listen: through the reservation of addr if
// there is one, else a plain bind.
func (t *Target) listenTCP(addr string) (net.Listener, error) {
	t.resMu.Lock()
	var p *reserve.Port
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		p = t.reserved[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
	}
	t.resMu.Unlock()
	if p != nil {
		return p.Listen()
	}
	return net.Listen("tcp", addr)
}

// closeReserved releases the ports the target reserved itself.
func (t *Target) closeReserved() error {
	t.resMu.Lock()
	owned := t.owned
	t.owned, t.reserved, t.resClosed = nil, map[netip.AddrPort]*reserve.Port{}, true
	t.resMu.Unlock()
	var errs []error
	for _, p := range owned {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
