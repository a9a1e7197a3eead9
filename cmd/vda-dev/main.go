// Command vda-dev runs a whole VDA cluster on this machine, on the fake SPDK:
// an embedded store, the portal, a monitor, two disk nodes and two controller
// nodes, laid out like the seed tutorial with 127.0.0.x for 192.168.0.x.
//
//	go run ./cmd/vda-dev [--data-dir .vda-dev]
//
// It prints what runs and the CLI commands to try, and stops cleanly on
// Ctrl-C. The data directory (store, disk images, agent state, the CA and
// certificates in --data-dir/tls) survives a restart. Every component uses
// mutual TLS with roles; the banner says how the CLI finds its admin
// certificate (VDA_TLS_DIR). --insecure runs without TLS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/version"
	"github.com/vda-io/vda/metrics"
	"github.com/vda-io/vda/mtls"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// options are vda-dev's flags beyond the cluster's Config.
type options struct {
	logs        cmdrun.LogFlags
	metricsAddr string
}

func parse(args []string, stderr io.Writer) (devcluster.Config, options, error) {
	var cfg devcluster.Config
	var o options
	fs := flag.NewFlagSet("vda-dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", ".vda-dev", "where the store, disk images and agent state live")
	fs.StringVar(&cfg.StoreURI, "db-uri", "", "store URI (default: embedded etcd in --data-dir)")
	fs.IntVar(&cfg.DNs, "dns", 2, "disk nodes")
	fs.IntVar(&cfg.CNs, "cns", 2, "controller nodes")
	fs.StringVar(&cfg.IPPrefix, "ip-prefix", "127.0.0.", "first three octets of every address")
	fs.BoolVar(&cfg.AnyPorts, "any-ports", false, "use free ports instead of the tutorial's")
	fs.BoolVar(&cfg.Register, "register", true, "add the nodes and one aio PD per disk node (false: do the tutorial's dn/pd/cn create steps yourself)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "run without TLS (by default the cluster makes a CA and role certificates in --data-dir/tls)")
	o.logs = cmdrun.LogFlags{Level: "error"} // logs go to stderr
	o.logs.Register(fs)
	fs.StringVar(&o.metricsAddr, "metrics-addr", "",
		"address (host:port) serving every component's Prometheus /metrics, /healthz and /readyz over plain HTTP (default: none)")
	showVersion := version.Flag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: vda-dev [flags]\n\nRuns a whole VDA cluster on the fake SPDK on this machine.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, o, err
	}
	if err := version.Check(showVersion); err != nil {
		return cfg, o, err
	}
	if fs.NArg() > 0 {
		return cfg, o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return cfg, o, o.logs.Validate()
}

// run runs the cluster until ctx ends; ready, if not nil, receives it once
// it serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- *devcluster.Cluster) int {
	cfg, o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, version.ErrRequested) {
		version.Print(stdout, "vda-dev")
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "vda-dev:", err)
		return 2
	}
	cfg.Logger = o.logs.Logger("vda-dev", stderr)
	var reg *prometheus.Registry
	if o.metricsAddr != "" {
		reg = metrics.NewRegistry()
		cfg.Metrics = reg
	}
	c, err := devcluster.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "vda-dev:", err)
		return 2
	}
	var metricsURL string
	if reg != nil {
		mctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ctx = mctx
		addr, stop, err := metrics.Start(ctx, o.metricsAddr, metrics.Handler(reg, c.ReadyCheck), func(err error) {
			fmt.Fprintln(stderr, "vda-dev:", err)
			cancel()
		})
		if err != nil {
			fmt.Fprintln(stderr, "vda-dev:", err)
			return 1
		}
		defer stop()
		metricsURL = "http://" + addr.String() + "/metrics"
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "vda-dev:", err)
		return 1
	case <-c.Ready():
	}
	printBanner(stdout, cfg, c, metricsURL)
	if ready != nil {
		ready <- c
	}
	if err := <-errc; err != nil {
		fmt.Fprintln(stderr, "vda-dev:", err)
		return 1
	}
	fmt.Fprintln(stdout, "vda-dev: stopped")
	return 0
}

func printBanner(w io.Writer, cfg devcluster.Config, c *devcluster.Cluster, metricsURL string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	store := cfg.StoreURI
	if store == "" {
		store = "embedded etcd in " + filepath.Join(cfg.DataDir, "etcd")
	}
	p("VDA dev cluster running (fake SPDK; data in %s)", cfg.DataDir)
	p("  store    %s", store)
	p("  portal   %s", c.PortalAddr())
	p("  monitor  in process")
	if metricsURL != "" {
		p("  metrics  %s (also /healthz, /readyz)", metricsURL)
	}
	for _, n := range c.Nodes() {
		line := fmt.Sprintf("  %-8s agent %s  nvme-of %s:%s  spdk %s", n.ShortName(), n.Name(),
			n.Listener().TrAddr, n.Listener().TrSvcID, n.SockPath())
		if n.Role == devcluster.RoleDN {
			line += "  pd0 " + n.PDImage()
		}
		p("%s", line)
	}
	vda := "vda --addr-port " + c.PortalAddr()
	host := "vda-host --addr-port " + c.PortalAddr() // the host tool on the fake's fabric
	p("")
	p("Try (go install ./cmd/vda ./cmd/vda-host first, or use go run ./cmd/vda and go run ./cmd/vda-host):")
	if dir := c.TLSDir(); dir != "" {
		p("  export %s=%s   # the CLI's admin certificate (mutual TLS)", mtls.EnvDir, dir)
	} else {
		vda += " --insecure"
		host += " --insecure"
	}
	if !cfg.Register {
		for _, n := range c.Nodes() {
			if n.Role == devcluster.RoleDN {
				p("  %s dn create --dn-name %s --dn-listener-conf '%s' --location %s", vda, n.Name(), n.ListenerConf(), n.Name())
				p("  %s pd create --dn-name %s --pd-name pd0 --pd-conf '%s'", vda, n.Name(), n.PDConf())
			} else {
				p("  %s cn create --cn-name %s --cn-listener-conf '%s' --location %s", vda, n.Name(), n.ListenerConf(), n.Name())
			}
		}
	} else {
		p("  %s cluster summary", vda)
	}
	p("  %s da create --da-name da0 --cntlr-cnt 2 --da-size 33554432 --physical-size 33554432 --da-conf '{\"stripe_count\":2, \"stripe_size_kb\":64}'", vda)
	p("  %s exp create --da-name da0 --exp-name exp0 --initiator-nqn nqn.2016-06.io.spdk:host0", vda)
	p("  %s exp get --da-name da0 --exp-name exp0", vda)
	p("  %s write --da-name da0 --exp-name exp0 --seed 7", host)
	p("  %s verify --da-name da0 --exp-name exp0 --seed 7", host)
	p("")
	p("Press Ctrl-C to stop.")
}
