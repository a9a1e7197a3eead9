// Command vda-portal serves the VDA portal gRPC API over a metadata store.
//
//	vda-portal --listener 192.168.0.11 --port 9520 \
//	    --db-uri postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db
//
// Store URIs: etcd://h1:2379,h2:2379/vda, embedded:///var/lib/vda/etcd,
// memory://, postgresql://..., mysql://..., sqlite:///path. Without
// --db-uri it starts an embedded etcd in <--data-dir>/etcd, which also
// serves etcd clients on the unix socket <--data-dir>/etcd/etcd.sock: that
// is where vda-monitor on the same machine finds it without --db-uri. At
// start it writes the store's identity (/vda/cluster: a cluster ID and the
// layout version) if the store has none, and refuses a store whose layout
// is newer than it knows, or, with --cluster-id, of another cluster.
//
// Several portals may serve one store (behind a load balancer): each
// places new DAs on its own share of the disk and controller nodes (see
// vda.Config.PlacementAffinity), so their creates do not collide. Its
// affinity is --placement-affinity, by default <host name>@<listen
// address>, which must differ between the portals of one store.
//
// It serves mutual TLS with roles (operators and monitors may call it):
// without --tls-* flags it uses ca.crt, portal.crt and portal.key in
// $VDA_TLS_DIR (default /etc/vda/tls), made by `vda certs issue --role
// portal --ip 192.168.0.11`. It refuses to start without certificates
// unless --insecure says that anyone who reaches the port may change the
// cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/version"
	"github.com/vda-io/vda/metrics"
	"github.com/vda-io/vda/metrics/portalmetrics"
	"github.com/vda-io/vda/metrics/storemetrics"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/allstores" // every backend, chosen by URI
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

type config struct {
	listener, dbURI, dataDir string
	clusterID                string
	logs                     cmdrun.LogFlags
	metricsAddr              string
	port                     int
	tlsFlags                 cmdrun.TLSFlags
	tls                      mtls.Config
	maxMalloc                uint64
	insecure                 bool
	affinity                 string
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("vda-portal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listener, "listener", "127.0.0.1", "address to listen on")
	fs.IntVar(&c.port, "port", 9520, "port to listen on (0: any free port)")
	fs.StringVar(&c.dbURI, "db-uri", "", "store URI (default: embedded etcd in <data-dir>/etcd, serving vda-monitor on this machine at <data-dir>/etcd/etcd.sock)")
	fs.StringVar(&c.dataDir, "data-dir", "/var/lib/vda", "data directory of the embedded store")
	fs.StringVar(&c.clusterID, "cluster-id", "", "refuse a store of another cluster than this ID (32 hex digits); a store without an identity gets this one (default: any; a new store gets a random ID)")
	c.logs.Register(fs)
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "address (host:port) serving Prometheus /metrics, /healthz and /readyz over plain HTTP (default: none)")
	fs.Uint64Var(&c.maxMalloc, "max-malloc-pd-bytes", vda.DefaultMaxMallocPDBytes, "largest malloc PD accepted, in bytes (it lives in the disk node's RAM)")
	fs.StringVar(&c.affinity, "placement-affinity", "", "this portal's name among the portals of one store, whose creates each keep to their own share of the nodes (default: <host name>@<listen address>)")
	c.tlsFlags.Register(fs, "portal certificate (vda://portal/<name>, with the IP or DNS name clients dial)")
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
	var err error
	if c.dbURI == "" {
		if c.dbURI, err = cmdrun.EmbeddedStoreURI(c.dataDir); err != nil {
			return c, err
		}
	}
	if c.clusterID != "" {
		if err := nvmeof.ValidateID(c.clusterID); err != nil {
			return c, fmt.Errorf("--cluster-id: %w", err)
		}
	}
	c.tls, c.insecure, err = c.tlsFlags.Resolve(mtls.RolePortal, fmt.Sprintf("--name portal --ip %s ", c.listener))
	return c, err
}

// run serves until ctx ends; ready, if not nil, gets the listen address.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- net.Addr) int {
	return cmdrun.Main(ctx, "vda-portal", args, stderr, parse, func(cfg config) cmdrun.LogFlags { return cfg.logs },
		func(ctx context.Context, cfg config, log hclog.Logger) error { return serve(ctx, cfg, log, ready) })
}

func serve(ctx context.Context, cfg config, log hclog.Logger, ready chan<- net.Addr) error {
	var reg *prometheus.Registry
	var sm *storemetrics.Metrics
	if cfg.metricsAddr != "" {
		reg = metrics.NewRegistry()
		var err error
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
	id, created, err := vda.InitIdentity(ctx, st, cfg.clusterID)
	if err != nil {
		return fmt.Errorf("store identity: %w", err)
	}
	log.Info("store identity", "cluster_id", id.ClusterID, "layout_version", id.LayoutVersion, "written", created)
	lis, err := net.Listen("tcp", net.JoinHostPort(cfg.listener, strconv.Itoa(cfg.port)))
	if err != nil {
		return err
	}
	defer func() { _ = lis.Close() }() // Serve closes it too
	affinity := cfg.affinity
	if affinity == "" {
		host, _ := os.Hostname()
		host, _, _ = strings.Cut(host, ".") // the short name: the whole may pass the affinity's bound
		affinity = strings.ReplaceAll(host[:min(len(host), 63)], "/", "_") + "@" + lis.Addr().String()
	}
	cl, err := vda.New(vda.Config{Store: st, Logger: log.Named("cluster"), MaxMallocPDBytes: cfg.maxMalloc,
		PlacementAffinity: affinity})
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	pcfg := portal.Config{Cluster: cl, Logger: log, TLS: cfg.tls, Insecure: cfg.insecure}
	if reg != nil {
		m, err := portalmetrics.New(reg)
		if err != nil {
			return err
		}
		pcfg.Metrics = m
		storeUp := func(ctx context.Context) error { _, err := st.Revision(ctx); return err }
		ctx2, stop, err := metrics.ServeFor(ctx, log, cfg.metricsAddr, metrics.Handler(reg, storeUp))
		if err != nil {
			return err
		}
		defer stop()
		ctx = ctx2
	}
	srv, err := portal.New(pcfg)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- lis.Addr()
	}
	cmdrun.NotifyReady(log)
	return srv.Serve(ctx, lis)
}
