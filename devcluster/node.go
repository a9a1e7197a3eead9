package devcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/metrics/agentmetrics"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// Role is a node's role.
type Role = agent.Role

// Roles.
const (
	RoleDN = agent.RoleDN
	RoleCN = agent.RoleCN
)

// Node is one disk node or controller node: an agent in front of a fake
// spdk_tgt, both of which Kill stops and Restart starts again.
type Node struct {
	c         *Cluster
	Role      Role
	Index     int    // dn0, dn1, ... or cn0, cn1, ...
	IP        string // the node's own loopback address
	agentPort int
	nvmfPort  int
	agentRes  *reserve.Port // held while the cluster runs (see Ports)
	nvmfRes   *reserve.Port

	metrics *agentmetrics.Metrics // nil: none

	mu      sync.Mutex
	running bool
	target  *spdktest.Target
	cancel  context.CancelFunc
	done    chan struct{}
}

// ShortName is "dn0", "cn1", ...
func (n *Node) ShortName() string { return string(n.Role) + strconv.Itoa(n.Index) }

// Name is the node's name in the cluster: its agent's host:port.
func (n *Node) Name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return net.JoinHostPort(n.IP, strconv.Itoa(n.agentPort))
}

// Listener is where the node's NVMe-oF subsystems listen.
func (n *Node) Listener() nvmeof.TransportID {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, _ := nvmeof.NewTransportID("tcp", "ipv4", n.IP, strconv.Itoa(n.nvmfPort))
	return t
}

// ListenerConf is Listener as the CLI's --dn-listener-conf/--cn-listener-conf JSON.
func (n *Node) ListenerConf() string {
	t := n.Listener()
	b, _ := json.Marshal(map[string]string{"trtype": "tcp", "traddr": t.TrAddr, "adrfam": "ipv4", "trsvcid": t.TrSvcID})
	return string(b)
}

// PDImage is a disk node's disk image (an aio PD), in the data directory.
func (n *Node) PDImage() string {
	return filepath.Join(n.c.cfg.DataDir, n.ShortName()+"-pd0.img")
}

// PDConf is the --pd-conf of the disk node's aio PD.
func (n *Node) PDConf() string {
	b, _ := json.Marshal(n.PD()) // a plain struct: cannot fail
	return string(b)
}

// PD is a disk node's PD: an aio bdev on PDImage.
func (n *Node) PD() vda.PDConf { return vda.PDConf{Type: vda.PDAio, Filename: n.PDImage()} }

// SockPath is the fake spdk_tgt's JSON-RPC socket.
func (n *Node) SockPath() string { return filepath.Join(n.c.sockDir, n.ShortName()+".sock") }

// Running reports whether the node's agent and SPDK are up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// choosePorts reserves every node's agent and NVMe-oF ports in ports:
// fixed ones, or with AnyPorts those of the last run (ports.json in the
// data directory: the nodes are registered under their addresses) or free
// ones.
func (c *Cluster) choosePorts(ports *Ports, saved map[string][2]int) error {
	for _, n := range c.Nodes() {
		n.mu.Lock()
		want := [2]int{n.agentPort, n.nvmfPort}
		n.mu.Unlock()
		if c.cfg.AnyPorts {
			want = saved[n.ShortName()] // zero (any free port) unless saved
		}
		var res [2]*reserve.Port
		for i, port := range want {
			r, err := ports.take(n.IP, port)
			if err != nil {
				return fmt.Errorf("devcluster: %s: %w", n.ShortName(), err)
			}
			res[i] = r
		}
		n.mu.Lock()
		n.agentRes, n.nvmfRes = res[0], res[1]
		n.agentPort, n.nvmfPort = int(res[0].Addr().Port()), int(res[1].Addr().Port())
		n.mu.Unlock()
	}
	return nil
}

// start brings the node up for the first time (its ports chosen).
func (n *Node) start(ctx context.Context) error {
	if n.Role == RoleDN {
		if err := ensureImage(n.PDImage(), n.c.cfg.PDSizeBytes); err != nil {
			return err
		}
	}
	return n.Restart(ctx)
}

// tlsDir holds the node's agent certificate (mtls.Files layout).
func (n *Node) tlsDir() string { return filepath.Join(n.c.cfg.DataDir, "tls", n.ShortName()) }

// ensureImage creates a sparse disk image of size bytes unless it exists.
func ensureImage(path string, size uint64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	err = f.Truncate(int64(size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	return nil
}

// Restart starts the node's fake spdk_tgt and agent (after Kill); it is a
// no-op for a running node. The fake starts empty, like a restarted
// spdk_tgt: disk images keep their bytes, everything else is rebuilt by the
// monitor's next push.
func (n *Node) Restart(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		return nil
	}
	if n.agentRes == nil {
		return fmt.Errorf("devcluster: %s: the cluster is not running", n.ShortName())
	}
	log := n.c.log.Named(n.ShortName())
	cfg := spdktest.DefaultConfig()
	cfg.SockPath, cfg.WaitForRPC, cfg.Logger = n.SockPath(), true, log.Named("spdk")
	// The fake serves the node's NVMe-oF listener on its reserved port.
	cfg.Reserved = []*reserve.Port{n.nvmfRes}
	tgt, err := spdktest.New(cfg)
	if err != nil {
		return fmt.Errorf("devcluster: %s: %w", n.ShortName(), err)
	}
	if err := initSPDK(ctx, cfg.SockPath); err != nil {
		_ = tgt.Close()
		return fmt.Errorf("devcluster: %s: %w", n.ShortName(), err)
	}
	acfg := agent.DefaultConfig(n.Role)
	acfg.SPDKAddr = cfg.SockPath
	acfg.Listener, _ = nvmeof.NewTransportID("tcp", "ipv4", n.IP, strconv.Itoa(n.nvmfPort))
	acfg.StateDir = filepath.Join(n.c.cfg.DataDir, n.ShortName())
	// The disk images live in the data directory; the fake SPDK's
	// lvstores on them are the PDs' own.
	acfg.AioDirs = []string{n.c.cfg.DataDir}
	acfg.LvstoreLabels = []agent.LvstoreLabelReader{blockdev.LvstoreName}
	acfg.Logger = log.Named("agent")
	if n.metrics != nil {
		acfg.Metrics = n.metrics
	}
	// Only the monitor's certificate may drive the agents, and only from
	// the cluster's own addresses.
	acfg.AllowedCallers = []string{n.c.cfg.IPPrefix + "0/24", "127.0.0.0/8"}
	if n.c.cfg.Insecure {
		acfg.Insecure = true
	} else {
		acfg.TLS = mtls.Files(n.tlsDir(), mtls.RoleAgent)
	}
	if err := os.MkdirAll(acfg.StateDir, 0o755); err != nil {
		_ = tgt.Close()
		return fmt.Errorf("devcluster: %w", err)
	}
	a, err := agent.New(acfg)
	if err != nil {
		_ = tgt.Close()
		return fmt.Errorf("devcluster: %s: %w", n.ShortName(), err)
	}
	lis, err := n.agentRes.Listen()
	if err != nil {
		_ = a.Close()
		_ = tgt.Close()
		return fmt.Errorf("devcluster: %s: %w", n.ShortName(), err)
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Serve(actx, lis); err != nil {
			log.Error("agent stopped", "error", err)
		}
		_ = a.Close()
	}()
	n.target, n.cancel, n.done, n.running = tgt, cancel, done, true
	log.Info("node up", "agent", lis.Addr().String(), "listener", acfg.Listener.String())
	return nil
}

// initSPDK does what the tutorial does after starting spdk_tgt
// --wait-for-rpc: bdev_set_options -d, framework_start_init.
func initSPDK(ctx context.Context, sock string) error {
	c, err := spdk.Dial(ctx, sock)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	off := false
	if err := c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: &off}); err != nil {
		return err
	}
	if err := c.FrameworkStartInit(ctx); err != nil {
		return err
	}
	return c.FrameworkWaitInit(ctx)
}

// Kill stops the node as a crash would: the fake spdk_tgt loses its
// volatile state and closes its sockets, and the agent stops answering.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return
	}
	n.target.Crash()
	_ = n.target.Close()
	n.cancel()
	<-n.done
	n.running = false
	n.c.log.Named(n.ShortName()).Info("node killed")
}
