package devcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// Ports holds the TCP ports of a cluster's nodes: each agent's gRPC port
// and each node's NVMe-oF port. The nodes are registered under these
// addresses, so they must stay the same when a node restarts (Node.Kill,
// Node.Restart) and when the whole cluster does. While it holds a port,
// nobody else can take it, and connections to a node that is down are
// refused, as by a real server whose processes died.
//
// A Cluster holds its ports in a Ports of its own from Run until Run
// returns. Pass one in Config.Ports to keep the ports held across Runs of
// several Clusters on one data directory (a test restarting a cluster);
// it serves one running cluster at a time, and its owner closes it.
type Ports struct {
	mu     sync.Mutex
	held   map[netip.AddrPort]*reserve.Port
	closed bool
}

// NewPorts returns an empty Ports.
func NewPorts() *Ports { return &Ports{held: map[netip.AddrPort]*reserve.Port{}} }

// Close releases every port. It is idempotent.
func (p *Ports) Close() error {
	p.mu.Lock()
	held := p.held
	p.held, p.closed = map[netip.AddrPort]*reserve.Port{}, true
	p.mu.Unlock()
	var errs []error
	for _, r := range held {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// take returns the reservation of ip:port, reserving it unless held
// already. Port 0 reserves a free port below the kernel's ephemeral range,
// where no outgoing connection takes it while the cluster is stopped.
func (p *Ports) take(ip string, port int) (*reserve.Port, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("devcluster: ports closed")
	}
	if port != 0 {
		if ap, err := netip.ParseAddrPort(ip + ":" + strconv.Itoa(port)); err == nil {
			if r, ok := p.held[ap]; ok {
				return r, nil
			}
		}
		return p.reserveLocked(ip, port)
	}
	low := ephemeralLow()
	var err error
	for range 1000 {
		var r *reserve.Port
		if r, err = p.reserveLocked(ip, 10000+rand.IntN(low-10000)); err == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("devcluster: no free port on %s below %d: %w", ip, low, err)
}

func (p *Ports) reserveLocked(ip string, port int) (*reserve.Port, error) {
	r, err := reserve.TCP(ip, port)
	if err != nil {
		return nil, fmt.Errorf("devcluster: %w", err)
	}
	p.held[r.Addr()] = r
	return r, nil
}

// ephemeralLow is the first port the kernel hands out to outgoing
// connections (Linux's ip_local_port_range; 32768 when unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				return n
			}
		}
	}
	return 32768
}
