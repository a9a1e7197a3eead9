package netnstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrUnavailable wraps every reason Available gives.
var ErrUnavailable = errors.New("netnstest: network namespaces unavailable")

var (
	availOnce sync.Once
	availErr  error
)

// Available returns nil when namespaces can be made here, or an error
// wrapping ErrUnavailable that says why not (not root, no ip, refused).
func Available() error {
	availOnce.Do(func() { availErr = probe() })
	return availErr
}

func probe() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not running as root", ErrUnavailable)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (install iproute2)", ErrUnavailable)
	}
	name := "vdaprobe" + randHex(4)
	if out, err := ipCmd("netns", "add", name); err != nil {
		return fmt.Errorf("%w: ip netns add: %v: %s", ErrUnavailable, err, out)
	}
	defer func() { _, _ = ipCmd("netns", "del", name) }()
	if out, err := ipCmd("-n", name, "link", "add", "br0", "type", "bridge"); err != nil {
		return fmt.Errorf("%w: bridge: %v: %s", ErrUnavailable, err, out)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ipCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// Network is a bridge with hosts on it.
type Network struct {
	t      testing.TB
	prefix string // unique per network
	sw     string // the bridge's namespace

	mu    sync.Mutex
	hosts map[string]*Host
	n     int
}

// Host is one namespace on a Network.
type Host struct {
	Name string // as given to AddHost
	NS   string // the namespace's name (for ip netns exec)
	IP   string
}

// New creates an empty network (a bridge in its own namespace); it is torn
// down when the test ends. It fails the test if
// namespaces are unavailable: call Available first to skip instead.
func New(t testing.TB) *Network {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	n := &Network{t: t, prefix: "vda" + randHex(3), hosts: map[string]*Host{}}
	n.sw = n.prefix + "-sw"
	n.must("netns", "add", n.sw)
	t.Cleanup(func() { _, _ = ipCmd("netns", "del", n.sw) })
	n.must("-n", n.sw, "link", "set", "lo", "up")
	n.must("-n", n.sw, "link", "add", "br0", "type", "bridge")
	n.must("-n", n.sw, "link", "set", "br0", "up")
	return n
}

func (n *Network) must(args ...string) {
	n.t.Helper()
	if out, err := ipCmd(args...); err != nil {
		n.t.Fatalf("netnstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// AddHost creates host name with address cidr (e.g. "192.168.0.14/24") on
// the bridge, with loopback up.
func (n *Network) AddHost(name, cidr string) *Host {
	n.t.Helper()
	ip, _, ok := strings.Cut(cidr, "/")
	if !ok {
		n.t.Fatalf("netnstest: %q is not an address/prefix", cidr)
	}
	n.mu.Lock()
	if _, dup := n.hosts[name]; dup {
		n.mu.Unlock()
		n.t.Fatalf("netnstest: host %q added twice", name)
	}
	n.n++
	idx := n.n
	n.mu.Unlock()
	h := &Host{Name: name, NS: fmt.Sprintf("%s-%s", n.prefix, name), IP: ip}
	// Interface names are at most 15 bytes: prefix (9) + index + a/b.
	a, b := fmt.Sprintf("%s%02da", n.prefix, idx), fmt.Sprintf("%s%02db", n.prefix, idx)
	n.must("netns", "add", h.NS)
	n.t.Cleanup(func() { _, _ = ipCmd("netns", "del", h.NS) })
	n.must("link", "add", a, "type", "veth", "peer", "name", b)
	n.must("link", "set", a, "netns", h.NS)
	n.must("link", "set", b, "netns", n.sw)
	n.must("-n", n.sw, "link", "set", b, "master", "br0")
	n.must("-n", n.sw, "link", "set", b, "up")
	n.must("-n", h.NS, "link", "set", a, "name", "eth0")
	n.must("-n", h.NS, "addr", "add", cidr, "dev", "eth0")
	n.must("-n", h.NS, "link", "set", "eth0", "up")
	n.must("-n", h.NS, "link", "set", "lo", "up")
	n.mu.Lock()
	n.hosts[name] = h
	n.mu.Unlock()
	return h
}

// Host returns the host added under name, or nil.
func (n *Network) Host(name string) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosts[name]
}

// Command returns a command that runs name with args inside h's namespace.
// (ip netns exec execs the program, so Process is the program itself.)
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Cut disconnects h from the bridge (a network partition) until Restore.
func (n *Network) Cut(h *Host) error {
	_, err := ipCmd("-n", h.NS, "link", "set", "eth0", "down")
	return err
}

// Restore reconnects a host Cut from the bridge.
func (n *Network) Restore(h *Host) error {
	_, err := ipCmd("-n", h.NS, "link", "set", "eth0", "up")
	return err
}
