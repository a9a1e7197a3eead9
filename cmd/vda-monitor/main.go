// Command vda-monitor drives the cluster's node agents: it pushes each
// node's desired state, writes the reported status back, tracks node health
// and fails disk arrays over to a secondary controller.
//
//	vda-monitor --listener 192.168.0.12 --port 9620 \
//	    --db-uri postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db
//
// Run several with distinct --id on one store to split the nodes among
// them; a dead monitor's nodes move to the others within --lease-ttl. On
// --listener:--port it serves the standard gRPC health service
// (grpc.health.v1), SERVING while it is a live member of the store.
//
// Store URIs: etcd://h1:2379,h2:2379/vda, embedded:///var/lib/vda/etcd,
// memory://, postgresql://..., mysql://..., sqlite:///path. Portal and
// monitors must share one. Without --db-uri it uses the store of the
// vda-portal on this machine that runs without --db-uri: the embedded etcd
// the portal serves on the unix socket <--data-dir>/etcd/etcd.sock (start
// the portal first; the monitor refuses to start if the socket is missing).
//
// It checks the store's identity (/vda/cluster, written by the portal):
// a store without one (empty, or not yet used by a portal of this version)
// is logged at WARN and /readyz reports not ready until it has one; a store
// whose layout is newer than this monitor knows, or with --cluster-id one
// of another cluster, is refused (exit 1).
//
// It talks to the agents over mutual TLS with roles and serves its health
// service the same way (to any role): without --tls-* flags it uses ca.crt,
// monitor.crt and monitor.key in $VDA_TLS_DIR (default /etc/vda/tls), made
// by `vda certs issue --role monitor`. Each agent must present a
// certificate naming its node (vda://agent/<node name>). It refuses to
// start without certificates unless --insecure says to drive agents in
// plaintext. Exit codes: 0 stopped, 1 failed, 2 bad command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/version"
	"github.com/vda-io/vda/metrics"
	"github.com/vda-io/vda/metrics/monitormetrics"
	"github.com/vda-io/vda/metrics/storemetrics"
	"github.com/vda-io/vda/monitor"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/allstores" // every backend, chosen by URI
)

// Service is the health service name the monitor reports under (besides
// the server-wide "").
const Service = "vda.monitor"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

type config struct {
	listener, dbURI, dataDir string
	clusterID                string
	localStore               bool // dbURI is the default: the local portal's socket
	logs                     cmdrun.LogFlags
	metricsAddr              string
	port                     int
	tls                      cmdrun.TLSFlags
	mon                      monitor.Config
}

func parse(args []string, stderr io.Writer) (config, error) {
	c := config{mon: monitor.DefaultConfig(nil, "")}
	m := &c.mon
	fs := flag.NewFlagSet("vda-monitor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listener, "listener", "127.0.0.1", "address of the health service")
	fs.IntVar(&c.port, "port", 9620, "port of the health service (0: any free port)")
	fs.StringVar(&c.dbURI, "db-uri", "", "store URI (default: the store of vda-portal on this machine, at <data-dir>/etcd/etcd.sock)")
	fs.StringVar(&c.dataDir, "data-dir", "/var/lib/vda", "data directory of the vda-portal whose store is the default")
	fs.StringVar(&c.clusterID, "cluster-id", "", "refuse a store of another cluster than this ID (32 hex digits; vda-portal logs it) (default: any)")
	fs.StringVar(&m.ID, "id", "", "monitor ID, unique among the monitors (default: <listener>:<port>)")
	fs.DurationVar(&m.LeaseTTL, "lease-ttl", m.LeaseTTL, "membership lease TTL: a dead monitor's nodes move after about this long")
	fs.DurationVar(&m.ResyncInterval, "resync-interval", m.ResyncInterval, "push every node's state this often even if nothing changed")
	fs.DurationVar(&m.Failover.Interval, "health-interval", m.Failover.Interval, "probe every node's health this often")
	fs.IntVar(&m.Failover.MissThreshold, "miss-threshold", m.Failover.MissThreshold,
		"consecutive refused probes (agent or its SPDK gone) that fail a node")
	fs.DurationVar(&m.Failover.Window, "health-window", m.Failover.Window, "the refused probes must fall within this window")
	fs.DurationVar(&m.Failover.SlowTimeout, "slow-timeout", m.Failover.SlowTimeout,
		"fail a node whose probes only time out after this long without an answer (a slow node is not a dead one; "+
			"must exceed --health-window)")
	fs.DurationVar(&m.Failover.HoldDown, "hold-down", m.Failover.HoldDown,
		"a node that failed takes no new primaries until it has been healthy this long (0: at once)")
	fs.DurationVar(&m.SyncTimeout, "sync-timeout", m.SyncTimeout, "bound on one push to an agent")
	fs.DurationVar(&m.BusyGrace, "busy-grace", m.BusyGrace,
		"a node busy with a push this long may stay silent without it counting (0: none; it delays the detection of a node that hangs mid-push)")
	c.logs.Register(fs)
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "address (host:port) serving Prometheus /metrics, /healthz and /readyz over plain HTTP (default: none)")
	c.tls.Register(fs, "monitor certificate (vda://monitor/<name>), presented to agents and health clients")
	showVersion := version.Flag(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := version.Check(showVersion); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.dbURI == "" {
		uri, err := cmdrun.LocalStoreURI(c.dataDir)
		if err != nil {
			return c, err
		}
		c.dbURI, c.localStore = uri, true
	}
	if c.clusterID != "" {
		if err := nvmeof.ValidateID(c.clusterID); err != nil {
			return c, fmt.Errorf("--cluster-id: %w", err)
		}
	}
	if m.ID == "" {
		m.ID = net.JoinHostPort(c.listener, strconv.Itoa(c.port))
	}
	var err error
	if m.TLS, m.Insecure, err = c.tls.Resolve(mtls.RoleMonitor, fmt.Sprintf("--name monitor --ip %s ", c.listener)); err != nil {
		return c, err
	}
	// Check the settings before opening the store.
	return c, m.Validate()
}

// run serves until ctx ends; ready, if not nil, gets the health address.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- net.Addr) int {
	return cmdrun.Main(ctx, "vda-monitor", args, stderr, parse, func(cfg config) cmdrun.LogFlags { return cfg.logs },
		func(ctx context.Context, cfg config, log hclog.Logger) error { return serve(ctx, cfg, log, ready) })
}

func serve(ctx context.Context, cfg config, log hclog.Logger, ready chan<- net.Addr) error {
	if cfg.localStore {
		if err := cmdrun.CheckLocalStore(cfg.dataDir); err != nil {
			return err
		}
	}
	var reg *prometheus.Registry
	var sm *storemetrics.Metrics
	if cfg.metricsAddr != "" {
		reg = metrics.NewRegistry()
		m, err := monitormetrics.New(reg)
		if err != nil {
			return err
		}
		cfg.mon.Metrics = m
		if sm, err = storemetrics.New(reg); err != nil {
			return err
		}
	}
	raw, err := store.Open(ctx, cfg.dbURI, store.WithLogger(log.Named("store")))
	if err != nil {
		return err
	}
	st := sm.Wrap(raw)
	defer func() { _ = st.Close() }()
	if err := checkIdentity(ctx, st, cfg.clusterID, log); err != nil {
		return err
	}
	cfg.mon.Store, cfg.mon.Logger = st, log
	mon, err := monitor.New(cfg.mon)
	if err != nil {
		return err
	}
	if reg != nil {
		ready := func(ctx context.Context) error {
			if err := mon.Ready(); err != nil {
				return err
			}
			return identityReady(ctx, st, cfg.clusterID)
		}
		ctx2, stop, err := metrics.ServeFor(ctx, log, cfg.metricsAddr, metrics.Handler(reg, ready))
		if err != nil {
			return err
		}
		defer stop()
		ctx = ctx2
	}
	srv, err := healthServer(cfg.mon.TLS)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(cfg.listener, strconv.Itoa(cfg.port)))
	if err != nil {
		return err
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(lis) }()
	go func() { errc <- mon.Run(ctx) }()
	go func() { reportLiveness(ctx, mon, hs, cfg.mon.LeaseTTL); errc <- nil }()
	log.Info("serving health", "addr", lis.Addr().String(), "id", cfg.mon.ID)
	if ready != nil {
		ready <- lis.Addr()
	}
	cmdrun.NotifyReady(log)
	var first error
	pending := 3
	select {
	case <-ctx.Done():
	case first = <-errc: // something stopped early
		pending--
	}
	cancel()
	hs.Shutdown()
	srv.GracefulStop()
	for ; pending > 0; pending-- {
		if err := <-errc; first == nil {
			first = err
		}
	}
	if errors.Is(first, context.Canceled) || errors.Is(first, grpc.ErrServerStopped) {
		return nil
	}
	return first
}

// healthServer serves grpc.health.v1; over mutual TLS to any role.
func healthServer(t mtls.Config) (*grpc.Server, error) {
	if !t.Enabled() {
		return grpc.NewServer(), nil
	}
	tc, err := t.ServerTLS()
	if err != nil {
		return nil, err
	}
	p := mtls.Policy{"/" + healthpb.Health_ServiceDesc.ServiceName + "/*": mtls.Roles}
	return grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)),
		grpc.ChainUnaryInterceptor(mtls.UnaryServerInterceptor(p)),
		grpc.ChainStreamInterceptor(mtls.StreamServerInterceptor(p))), nil
}

// reportLiveness keeps the health status at SERVING while the monitor is a
// live member, NOT_SERVING otherwise. Liveness lapses without an event (a
// lease that can no longer be renewed), so it is also polled.
func reportLiveness(ctx context.Context, mon *monitor.Monitor, hs *health.Server, ttl time.Duration) {
	t := time.NewTicker(ttl / 8)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if mon.Live() {
			st = healthpb.HealthCheckResponse_SERVING
		}
		hs.SetServingStatus("", st)
		hs.SetServingStatus(Service, st)
		select {
		case <-ctx.Done():
			return
		case <-mon.Membership().Changed():
		case <-t.C:
		}
	}
}

// checkIdentity refuses a store the monitor must not drive: one whose
// identity does not decode, whose layout is newer than this monitor knows,
// or, with want, of another cluster. A store without an identity is
// allowed (an empty store a portal has yet to use, or one of a VDA that
// predates identities) but said loudly: the usual cause is a monitor and a
// portal on different stores.
func checkIdentity(ctx context.Context, st store.Store, want string, log hclog.Logger) error {
	id, err := vda.ReadIdentity(ctx, st)
	if errors.Is(err, vda.ErrNoIdentity) {
		log.Warn("store holds no cluster identity: empty, or no vda-portal of this version used it; "+
			"is this monitor on the portal's store (--db-uri)?", "key", vda.KeyIdentity,
			"readyz", "not ready until a portal writes the identity")
		return nil
	}
	if err != nil {
		return fmt.Errorf("store identity: %w", err)
	}
	if err := id.Check(want); err != nil {
		return fmt.Errorf("store identity: %w", err)
	}
	log.Info("store identity", "cluster_id", id.ClusterID, "layout_version", id.LayoutVersion)
	return nil
}

// identityReady is the store part of /readyz: the store names a cluster
// this monitor may drive.
func identityReady(ctx context.Context, st store.Store, want string) error {
	id, err := vda.ReadIdentity(ctx, st)
	if errors.Is(err, vda.ErrNoIdentity) {
		return fmt.Errorf("%w: is the portal on this store?", err)
	}
	if err != nil {
		return err
	}
	return id.Check(want)
}
