package agenttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// ErrConfig is wrapped by the errors of an invalid Config.
var ErrConfig = errors.New("agenttest: invalid config")

// Registry is told of every agent a Node starts, under the node's address
// (monitor.InProcess is one).
type Registry interface {
	Add(address string, a *agent.Agent)
}

// Config configures a Node.
type Config struct {
	// Role is agent.RoleDN or agent.RoleCN (required).
	Role agent.Role
	// Name is the node's name. "" means the gRPC address with GRPC
	// (required without).
	Name string
	// GRPC serves the agent's gRPC API on a loopback port held for the
	// node's life (Node.Addr): refused while the agent is down, served
	// again by Restart.
	GRPC bool
	// StateDir is the agent's state directory (its ID, generations and
	// epochs); "" means a temporary one, removed by Close.
	StateDir string
	// Register, if set, is told of the node's agent under Node.Address
	// at every start (the first and each Restart).
	Register Registry
	// Agent, if set, adjusts the agent's Config before each start (TLS
	// for the node's name, AioDirs, timeouts). It is Insecure by default.
	Agent func(n *Node, c *agent.Config)
	// Logger receives the node's logs (its fake SPDK's and agent's); nil
	// means silent.
	Logger hclog.Logger
}

// Node is one disk or controller node in the process: an agent in front of
// a fake spdk_tgt. Its methods are safe for concurrent use.
type Node struct {
	// Name is the node's name (Config.Name).
	Name string
	// Role is the node's role.
	Role agent.Role
	// Addr is the agent's gRPC address with Config.GRPC, else "".
	Addr string
	// Listener is where the node's NVMe-oF subsystems listen: a loopback
	// port held for the node's life.
	Listener nvmeof.TransportID
	// SPDK is the node's fake spdk_tgt (inject faults, crash it).
	SPDK *spdktest.Target

	cfg     Config
	log     hclog.Logger
	sockDir string
	port    *reserve.Port // the gRPC port with GRPC

	mu        sync.Mutex
	agent     *agent.Agent
	stopped   chan struct{} // closed when the running agent has stopped
	cancel    context.CancelFunc
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// StartNode is Start for t: it fails t if the node cannot start, and
// closes the node when t ends.
func StartNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("agenttest: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// Start starts a node: its fake spdk_tgt, set up as the tutorial does,
// then its agent. ctx bounds the start only. Close stops it.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if cfg.Role != agent.RoleDN && cfg.Role != agent.RoleCN {
		return nil, fmt.Errorf("%w: role %q", ErrConfig, cfg.Role)
	}
	if cfg.Name == "" && !cfg.GRPC {
		return nil, fmt.Errorf("%w: a node without GRPC needs a Name", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	n = &Node{Name: cfg.Name, Role: cfg.Role, cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			_ = n.Close()
			n = nil
		}
	}()
	// Unix socket paths are limited to ~108 bytes: a short directory.
	if n.sockDir, err = os.MkdirTemp("", "agenttest"); err != nil {
		return nil, fmt.Errorf("agenttest: %w", err)
	}
	if cfg.StateDir == "" {
		n.cfg.StateDir = filepath.Join(n.sockDir, "state")
		if err := os.Mkdir(n.cfg.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("agenttest: %w", err)
		}
	}
	if cfg.GRPC {
		if n.port, err = reserve.TCP("127.0.0.1", 0); err != nil {
			return nil, fmt.Errorf("agenttest: %w", err)
		}
		n.Addr = n.port.String()
		if n.Name == "" {
			n.Name = n.Addr
		}
	}
	n.log = n.log.Named(n.Name)
	scfg := spdktest.DefaultConfig()
	scfg.SockPath, scfg.WaitForRPC, scfg.Logger = filepath.Join(n.sockDir, "spdk.sock"), true, n.log.Named("spdk")
	if n.SPDK, err = spdktest.New(scfg); err != nil {
		return nil, fmt.Errorf("agenttest: %w", err)
	}
	trid, err := n.SPDK.Reserve("127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("agenttest: %w", err)
	}
	if n.Listener, err = nvmeof.NewTransportID(trid.TrType, trid.AdrFam, trid.TrAddr, trid.TrSvcID); err != nil {
		return nil, fmt.Errorf("agenttest: %w", err)
	}
	if err := InitSPDK(ctx, n.SPDK.SockPath()); err != nil {
		return nil, err
	}
	if err := n.startAgent(); err != nil {
		return nil, err
	}
	return n, nil
}

// InitSPDK does what the tutorial does after starting spdk_tgt
// --wait-for-rpc at sock: bdev_set_options -d (no auto-examine) and
// framework_start_init, then waits for the framework.
func InitSPDK(ctx context.Context, sock string) error {
	c, err := spdk.Dial(ctx, sock)
	if err != nil {
		return fmt.Errorf("agenttest: %w", err)
	}
	defer func() { _ = c.Close() }()
	off := false
	if err := c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: &off}); err != nil {
		return fmt.Errorf("agenttest: %w", err)
	}
	if err := c.FrameworkStartInit(ctx); err != nil {
		return fmt.Errorf("agenttest: %w", err)
	}
	if err := c.FrameworkWaitInit(ctx); err != nil {
		return fmt.Errorf("agenttest: %w", err)
	}
	return nil
}

// Address is where a monitor reaches the node's agent: Addr with GRPC,
// else the name (the key of Config.Register).
func (n *Node) Address() string {
	if n.Addr != "" {
		return n.Addr
	}
	return n.Name
}

// ListenerConf is Listener as a node's listener JSON
// (--dn-listener-conf; vda.NodeSpec takes Listener itself).
func (n *Node) ListenerConf() string {
	b, _ := json.Marshal(map[string]string{"trtype": n.Listener.TrType, "adrfam": n.Listener.AdrFam,
		"traddr": n.Listener.TrAddr, "trsvcid": n.Listener.TrSvcID}) // strings only: cannot fail
	return string(b)
}

// Agent returns the node's running agent (nil while it is down).
func (n *Node) Agent() *agent.Agent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.agent
}

// Client returns a client of the node's running agent in the process, as
// the monitor vda://monitor/<monitor> (agent.(*Agent).Local); nil while the
// agent is down.
func (n *Node) Client(monitor string) agentpb.AgentClient {
	a := n.Agent()
	if a == nil {
		return nil
	}
	return a.Local(mtls.Identity{Role: mtls.RoleMonitor, Name: monitor})
}

// StateDir is the agent's state directory.
func (n *Node) StateDir() string { return n.cfg.StateDir }

// startAgent starts a new agent on the node's SPDK.
func (n *Node) startAgent() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("agenttest: %s: closed", n.Name)
	}
	if n.agent != nil {
		return nil
	}
	cfg := agent.DefaultConfig(n.Role)
	cfg.SPDKAddr, cfg.Listener, cfg.StateDir = n.SPDK.SockPath(), n.Listener, n.cfg.StateDir
	cfg.Insecure, cfg.Logger = true, n.log.Named("agent")
	if n.cfg.Agent != nil {
		n.cfg.Agent(n, &cfg)
		if cfg.TLS.Enabled() {
			cfg.Insecure = false
		}
	}
	a, err := agent.New(cfg)
	if err != nil {
		return fmt.Errorf("agenttest: %s: %w", n.Name, err)
	}
	stopped := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	if n.port != nil {
		lis, err := n.port.Listen()
		if err != nil {
			cancel()
			_ = a.Close()
			return fmt.Errorf("agenttest: %s: %w", n.Name, err)
		}
		go func() {
			defer close(stopped)
			if err := a.Serve(ctx, lis); err != nil {
				n.log.Error("agent stopped", "error", err)
			}
			_ = a.Close()
		}()
	} else {
		go func() {
			defer close(stopped)
			<-ctx.Done()
			_ = a.Close()
		}()
	}
	n.agent, n.cancel, n.stopped = a, cancel, stopped
	if n.cfg.Register != nil {
		n.cfg.Register.Add(n.Address(), a)
	}
	return nil
}

// StopAgent stops the node's agent only: its SPDK keeps running (and its
// exports keep serving), but the agent refuses every call, as one that
// crashed or is cut off does. Restart starts it again.
func (n *Node) StopAgent() {
	n.mu.Lock()
	cancel, stopped := n.cancel, n.stopped
	n.agent, n.cancel, n.stopped = nil, nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-stopped
	}
}

// Kill stops the node as a crash would: the agent stops and the fake
// spdk_tgt loses its volatile state and closes its sockets (its exports
// drop their connections). Restart brings it back.
func (n *Node) Kill() {
	n.StopAgent()
	n.SPDK.Crash()
}

// Restart brings a node back after Kill or StopAgent: a crashed spdk_tgt
// starts again (empty, set up as the tutorial does), then a new agent with
// the same state directory on the same addresses. A running node is left
// alone.
func (n *Node) Restart(ctx context.Context) error {
	var d net.Dialer
	if c, err := d.DialContext(ctx, "unix", n.SPDK.SockPath()); err == nil {
		_ = c.Close() // SPDK is up: keep it and its state
	} else {
		if err := n.SPDK.Restart(true); err != nil {
			return fmt.Errorf("agenttest: %s: %w", n.Name, err)
		}
		if err := InitSPDK(ctx, n.SPDK.SockPath()); err != nil {
			return err
		}
	}
	return n.startAgent()
}

// Close stops the node and releases everything it holds. It is
// idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true // no agent starts from now on
		n.mu.Unlock()
		n.StopAgent()
		var errs []error
		if n.SPDK != nil {
			errs = append(errs, n.SPDK.Close())
		}
		if n.port != nil {
			errs = append(errs, n.port.Close())
		}
		if n.sockDir != "" {
			errs = append(errs, os.RemoveAll(n.sockDir))
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
