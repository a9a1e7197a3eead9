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
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/metrics/monitormetrics"
	"github.com/vda-io/vda/metrics/portalmetrics"
	"github.com/vda-io/vda/metrics/storemetrics"
	"github.com/vda-io/vda/monitor"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/allstores" // every backend, chosen by URI
	"github.com/vda-io/vda/store/etcdembed"
)

// The tutorial's ports (seed 003): every node has an address of its own,
// so the ports are the same on every node.
const (
	PortalPort   = 9520
	DNAgentPort  = 9720
	CNAgentPort  = 9820
	DNNVMeFPort  = 4420
	CNNVMeFPort  = 4430
	DefaultPDGiB = 1
)

// ErrConfig is wrapped by the errors of an invalid Config.
var ErrConfig = errors.New("devcluster: invalid config")

// Config configures a Cluster. Zero values mean the defaults.
type Config struct {
	// DataDir keeps the embedded store, the disk nodes' disk images and
	// the agents' state, so a restarted cluster finds everything again
	// (required).
	DataDir string
	// StoreURI overrides the embedded etcd in DataDir (any store.Open
	// URI: memory://, sqlite:///..., postgresql://...).
	StoreURI string
	// IPPrefix is the first three octets of every address, "127.0.0." by
	// default: the portal is .11, disk node i is .14+i and controller node
	// i follows the disk nodes (with two of each: .14 .15 .16 .17, as in
	// the tutorial). Linux routes all of 127.0.0.0/8 to loopback.
	IPPrefix string
	// DNs and CNs are how many disk and controller nodes to run (2 each).
	DNs, CNs int
	// AnyPorts picks free ports instead of the tutorial's, so several
	// clusters (tests) can run at once. The nodes' ports are kept in
	// DataDir/ports.json for the next run (the nodes are registered under
	// their addresses), which binds them again: in between, another
	// program may take one, and the node then fails to start. Ports below
	// the kernel's ephemeral range are chosen, which outgoing connections
	// never take.
	AnyPorts bool
	// Ports, if set, holds the nodes' ports across Runs (see Ports): a
	// test that restarts a cluster on the same DataDir passes the same
	// Ports to both, so no other program can take a port in between. By
	// default each Run holds the ports only while it runs.
	Ports *Ports
	// PDSizeBytes is the size of each disk node's disk image (sparse),
	// 1 GiB by default.
	PDSizeBytes uint64
	// Register adds the nodes and one aio PD per disk node to the store,
	// as the tutorial's dn/pd/cn create steps do (already registered
	// objects are kept).
	Register bool
	// Failover tunes failure detection (failover.DefaultConfig if zero).
	Failover failover.Config
	// Insecure runs every component without TLS. By default the cluster
	// makes a CA and role certificates in DataDir/tls (TLSDir) and uses
	// mutual TLS everywhere, as a deployment does.
	Insecure bool
	// Logger receives every component's logs; nil is silent.
	Logger hclog.Logger
	// Metrics, when set, gets the portal's, the monitor's and every
	// agent's metrics (package metrics), the agents' with a node label
	// (dn0, cn1, ...). New registers them, so one Registerer serves one
	// Cluster; nil means none.
	Metrics prometheus.Registerer
}

// Cluster is a whole VDA cluster in one process: a store, a portal, a
// monitor and the node agents, each agent in front of its own fake
// spdk_tgt (spdk/spdktest) whose NVMe-oF listeners are real TCP sockets.
type Cluster struct {
	cfg     Config
	log     hclog.Logger
	sockDir string

	ready  chan struct{}
	portal string // bound portal address, once ready

	mu    sync.Mutex
	nodes []*Node
	st    store.Store
	api   *vda.Cluster
	mon   *monitor.Monitor // while it runs

	portalMetrics  *portalmetrics.Metrics
	monitorMetrics *monitormetrics.Metrics
	storeMetrics   *storemetrics.Metrics
}

// New validates cfg and lays out the cluster; Run starts it.
func New(cfg Config) (*Cluster, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: no data directory", ErrConfig)
	}
	// Disk images are registered by path, and PD paths must be absolute.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%w: data directory: %w", ErrConfig, err)
	}
	cfg.DataDir = abs
	if cfg.IPPrefix == "" {
		cfg.IPPrefix = "127.0.0."
	}
	if cfg.DNs == 0 {
		cfg.DNs = 2
	}
	if cfg.CNs == 0 {
		cfg.CNs = 2
	}
	if cfg.DNs < 0 || cfg.CNs < 0 || 14+cfg.DNs+cfg.CNs > 255 {
		return nil, fmt.Errorf("%w: %d disk nodes and %d controller nodes", ErrConfig, cfg.DNs, cfg.CNs)
	}
	if cfg.PDSizeBytes == 0 {
		cfg.PDSizeBytes = DefaultPDGiB << 30
	}
	if cfg.PDSizeBytes%(4<<20) != 0 {
		return nil, fmt.Errorf("%w: PD size %d is not a multiple of 4 MiB", ErrConfig, cfg.PDSizeBytes)
	}
	if net.ParseIP(cfg.IPPrefix+"1") == nil {
		return nil, fmt.Errorf("%w: IP prefix %q", ErrConfig, cfg.IPPrefix)
	}
	if cfg.Failover == (failover.Config{}) {
		cfg.Failover = failover.DefaultConfig()
	}
	if err := cfg.Failover.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.StoreURI == "" {
		uri, err := etcdembed.URI(filepath.Join(cfg.DataDir, "etcd"))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		cfg.StoreURI = uri
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}
	for i := range cfg.DNs {
		c.nodes = append(c.nodes, c.layout(RoleDN, i, 14+i))
	}
	for i := range cfg.CNs {
		c.nodes = append(c.nodes, c.layout(RoleCN, i, 14+cfg.DNs+i))
	}
	if err := c.newMetrics(); err != nil {
		return nil, err
	}
	return c, nil
}

// layout names node idx of role at address IPPrefix+octet.
func (c *Cluster) layout(role Role, idx, octet int) *Node {
	ip := c.cfg.IPPrefix + strconv.Itoa(octet)
	agentPort, nvmfPort := DNAgentPort, DNNVMeFPort
	if role == RoleCN {
		agentPort, nvmfPort = CNAgentPort, CNNVMeFPort
	}
	return &Node{c: c, Role: role, Index: idx, IP: ip, agentPort: agentPort, nvmfPort: nvmfPort}
}

// Start runs the cluster in the background (Run) until ctx ends or stop is
// called, and returns once it serves, or Run's error if it failed to start.
// stop ends it and returns Run's error; calling it again returns the same.
func (c *Cluster) Start(ctx context.Context) (stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("devcluster: stopped before it was ready")
		}
		return nil, err
	}
	var once sync.Once
	var runErr error
	return func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}, nil
}

// Run starts the cluster and serves until ctx ends, then stops every
// component; it returns after all of them have exited.
func (c *Cluster) Run(ctx context.Context) error {
	if err := os.MkdirAll(c.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	// Unix socket paths are limited to ~108 bytes: keep them short.
	dir, err := os.MkdirTemp("", "vda-dev")
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	c.sockDir = dir

	raw, err := store.Open(ctx, c.cfg.StoreURI, store.WithLogger(c.log.Named("store")))
	if err != nil {
		return fmt.Errorf("devcluster: store: %w", err)
	}
	st := c.storeMetrics.Wrap(raw)
	defer func() { _ = st.Close() }()
	// The cluster runs a portal: it stamps the store as vda-portal does.
	if _, _, err := vda.InitIdentity(ctx, st, ""); err != nil {
		return fmt.Errorf("devcluster: store identity: %w", err)
	}
	api, err := vda.New(vda.Config{Store: st, Logger: c.log.Named("cluster")})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.st, c.api = st, api
	c.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3+len(c.nodes))
	defer wg.Wait()
	defer cancel()
	saved, err := c.loadPorts()
	if err != nil {
		return err
	}
	ports := c.cfg.Ports
	if ports == nil {
		// Released after every node has stopped (deferred before them).
		ports = NewPorts()
		defer func() { _ = ports.Close() }()
	}
	if err := c.choosePorts(ports, saved); err != nil {
		return err
	}
	if err := c.makeCerts(); err != nil {
		return err
	}
	lis, err := c.listen(c.cfg.IPPrefix+"11", PortalPort)
	if err != nil {
		return err
	}
	pcfg := portal.Config{Cluster: api, Logger: c.log.Named("portal"), TLS: c.tlsOf(mtls.RolePortal), Insecure: c.cfg.Insecure}
	if c.portalMetrics != nil { // not a typed nil in the interface
		pcfg.Metrics = c.portalMetrics
	}
	srv, err := portal.New(pcfg)
	if err != nil {
		_ = lis.Close()
		return err
	}
	c.portal = lis.Addr().String()
	wg.Go(func() { errc <- srv.Serve(ctx, lis) })

	for _, n := range c.nodes {
		if err := n.start(ctx); err != nil {
			return err
		}
		defer n.Kill()
	}
	if err := c.savePorts(); err != nil {
		return err
	}
	if c.cfg.Register {
		if err := c.register(ctx); err != nil {
			return err
		}
	}
	mcfg := monitor.DefaultConfig(st, "dev-monitor")
	mcfg.Failover, mcfg.Logger = c.cfg.Failover, c.log.Named("monitor")
	mcfg.TLS, mcfg.Insecure = c.tlsOf(mtls.RoleMonitor), c.cfg.Insecure
	if c.monitorMetrics != nil {
		mcfg.Metrics = c.monitorMetrics
	}
	mon, err := monitor.New(mcfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.mon = mon
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.mon = nil
		c.mu.Unlock()
	}()
	wg.Go(func() { errc <- mon.Run(ctx) })
	if c.cfg.Register {
		if err := c.waitCapacity(ctx, errc); err != nil {
			return err
		}
	}
	close(c.ready)
	c.log.Info("cluster ready", "portal", c.portal, "data_dir", c.cfg.DataDir)

	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("devcluster: a component stopped: %w", err)
	}
}

// waitCapacity waits until every disk node's PD reports its capacity (aio
// PDs are placeable only then), so a ready cluster can place a DA at once.
func (c *Cluster) waitCapacity(ctx context.Context, errc <-chan error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		sum, err := c.api.Summary(ctx)
		if err == nil && sum.PDCount == c.cfg.DNs && sum.TotalBytes > 0 {
			pds := 0
			for _, n := range c.Nodes() {
				if n.Role != RoleDN {
					continue
				}
				if pd, err := c.api.GetPhysicalDisk(ctx, n.Name(), "pd0"); err == nil && pd.Status.TotalBytes > 0 {
					pds++
				}
			}
			if pds == c.cfg.DNs {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return fmt.Errorf("devcluster: a component stopped: %w", err)
		case <-tick.C:
		}
	}
}

// listen listens on ip:port, or ip:0 when AnyPorts is set.
func (c *Cluster) listen(ip string, port int) (net.Listener, error) {
	if c.cfg.AnyPorts {
		port = 0
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("devcluster: %w", err)
	}
	return lis, nil
}

func (c *Cluster) portsFile() string { return filepath.Join(c.cfg.DataDir, "ports.json") }

// loadPorts reads the ports an AnyPorts cluster chose on its last run.
func (c *Cluster) loadPorts() (map[string][2]int, error) {
	b, err := os.ReadFile(c.portsFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devcluster: %w", err)
	}
	var saved map[string][2]int
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("devcluster: %s: %w", c.portsFile(), err)
	}
	return saved, nil
}

// savePorts records every node's agent and NVMe-oF ports.
func (c *Cluster) savePorts() error {
	ports := map[string][2]int{}
	for _, n := range c.Nodes() {
		n.mu.Lock()
		ports[n.ShortName()] = [2]int{n.agentPort, n.nvmfPort}
		n.mu.Unlock()
	}
	b, _ := json.Marshal(ports)
	if err := os.WriteFile(c.portsFile(), b, 0o644); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	return nil
}

// Ready is closed once every component serves.
func (c *Cluster) Ready() <-chan struct{} { return c.ready }

// PortalAddr is the portal's host:port (valid once Ready).
func (c *Cluster) PortalAddr() string { return c.portal }

// API returns the Go API over the cluster's store (valid once Ready).
func (c *Cluster) API() *vda.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.api
}

// Nodes returns the disk nodes then the controller nodes.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Node returns the node whose Name (agent address) or short name ("dn0",
// "cn1") is name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes() {
		if n.Name() == name || n.ShortName() == name {
			return n
		}
	}
	return nil
}

// register adds the nodes and one aio PD per disk node, like the
// tutorial's create steps; objects that exist already are kept.
func (c *Cluster) register(ctx context.Context) error {
	keep := func(err error) error {
		if errors.Is(err, vda.ErrAlreadyExists) {
			return nil
		}
		return err
	}
	for _, n := range c.Nodes() {
		spec := vda.NodeSpec{Name: n.Name(), Listener: n.Listener(), Location: n.Name()}
		var err error
		if n.Role == RoleDN {
			_, err = c.api.CreateDiskNode(ctx, spec)
			if err = keep(err); err == nil {
				_, err = c.api.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: n.Name(), Name: "pd0",
					Conf: n.PD()})
			}
		} else {
			_, err = c.api.CreateControllerNode(ctx, spec)
		}
		if err = keep(err); err != nil {
			return fmt.Errorf("devcluster: register %s: %w", n.ShortName(), err)
		}
	}
	return nil
}
