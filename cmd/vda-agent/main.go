// Command vda-agent is a VDA node agent: it converges the local spdk_tgt to
// the desired state the monitor pushes, as a disk node or a controller node.
//
//	vda-agent --role dn --listener 192.168.0.14 --port 9720 --sock-path /tmp/dn.sock \
//	    --listener-conf '{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}' \
//	    [--state-dir /var/lib/vda/agent] [--allow 192.168.0.12] \
//	    [--aio-dir /var/lib/vda/aio --aio-dir /dev/sdb] \
//	    [--tls-cert agent.crt --tls-key agent.key --tls-ca ca.crt | --insecure]
//
// It serves mutual TLS with roles: without --tls-* flags it uses ca.crt,
// agent.crt and agent.key in $VDA_TLS_DIR (default /etc/vda/tls), whose
// agent certificate names this node (`vda certs issue --role agent --name
// 192.168.0.14:9720 --ip 192.168.0.14`); only monitors may then Sync. It
// refuses to start without certificates unless --insecure says that anyone
// who reaches the port may drive the node.
//
// It drives the spdk_tgt at --sock-path: a real one, or vda-fakespdk for
// trying VDA without SPDK (the agent links no fake). It stops on SIGINT or
// SIGTERM. Exit codes: 0 stopped, 1 failed, 2 bad command line.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/version"
	"github.com/vda-io/vda/metrics"
	"github.com/vda-io/vda/metrics/agentmetrics"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

// Default gRPC ports of the tutorial.
const (
	defaultDNPort = 9720
	defaultCNPort = 9820
	// defaultStateDir is where agents keep their state unless told
	// otherwise: a restart without it loses the agent's ID (the monitor
	// then refuses to drive the node until an admin unbinds it) and the
	// fencing state.
	defaultStateDir = "/var/lib/vda/agent"
)

type options struct {
	cfg      agent.Config
	tls      cmdrun.TLSFlags
	listener string
	port     int
	logs     cmdrun.LogFlags
	metrics  string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	var role, conf string
	fs := flag.NewFlagSet("vda-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&role, "role", "", "dn (disk node) or cn (controller node); required")
	fs.StringVar(&o.listener, "listener", "127.0.0.1", "address the agent's gRPC service listens on")
	fs.IntVar(&o.port, "port", -1, "gRPC port (default 9720 for dn, 9820 for cn; 0: any free port)")
	fs.StringVar(&o.cfg.SPDKAddr, "sock-path", "/var/tmp/spdk.sock", "spdk_tgt JSON-RPC socket (or host:port)")
	fs.StringVar(&conf, "listener-conf", "", `NVMe-oF listener of this node, {"trtype":"tcp","traddr":...,"adrfam":...,"trsvcid":...}; required`)
	fs.StringVar(&o.cfg.StateDir, "state-dir", defaultStateDir,
		"directory keeping the agent's ID and the last applied generation and epochs across restarts "+
			"(default "+defaultStateDir+"/<listener>_<port>; \"\": none, the ID then changes on every start)")
	fs.StringVar(&o.cfg.NodeID, "node-id", "", "this node's ID; refuse desired state for another node")
	fs.Func("allow", "IP addresses or CIDR prefixes allowed to call the agent, comma separated (repeatable)", func(v string) error {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				o.cfg.AllowedCallers = append(o.cfg.AllowedCallers, a)
			}
		}
		return nil
	})
	fs.Func("aio-dir", "dn: a directory (or block device) where aio PDs may live, e.g. /var/lib/vda/aio or /dev/sdb (repeatable; none: aio PDs are refused)", func(v string) error {
		if !filepath.IsAbs(v) {
			return fmt.Errorf("%q is not an absolute path", v)
		}
		o.cfg.AioDirs = append(o.cfg.AioDirs, filepath.Clean(v))
		return nil
	})
	o.tls.Register(fs, "agent certificate naming vda://agent/<listener>:<port>")
	fs.DurationVar(&o.cfg.SyncTimeout, "sync-timeout", agent.DefaultSyncTimeout, "bound of one Sync")
	o.logs.Register(fs)
	fs.StringVar(&o.metrics, "metrics-addr", "", "address (host:port) serving Prometheus /metrics, /healthz and /readyz over plain HTTP (default: none)")
	showVersion := version.Flag(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := version.Check(showVersion); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	o.cfg.Role = agent.Role(role)
	switch o.cfg.Role {
	case agent.RoleDN:
		o.port = portOr(o.port, defaultDNPort)
	case agent.RoleCN:
		o.port = portOr(o.port, defaultCNPort)
	default:
		return o, fmt.Errorf("--role must be dn or cn, not %q", role)
	}
	if o.port > 65535 {
		return o, fmt.Errorf("--port %d is not a port", o.port)
	}
	l, err := nvmeof.ParseListenerConf(conf)
	if err != nil {
		return o, fmt.Errorf("--listener-conf: %w", err)
	}
	o.cfg.Listener = l
	o.cfg.ListenAddr = net.JoinHostPort(o.listener, strconv.Itoa(o.port))
	if o.cfg.StateDir == defaultStateDir {
		// One directory per agent, so several agents of one machine (or
		// of network namespaces sharing a filesystem) keep apart.
		o.cfg.StateDir = filepath.Join(defaultStateDir, o.listener+"_"+strconv.Itoa(o.port))
	}
	o.cfg.TLS, o.cfg.Insecure, err = o.tls.Resolve(mtls.RoleAgent,
		fmt.Sprintf("--name %s --ip %s ", o.cfg.ListenAddr, o.listener))
	return o, err
}

func portOr(p, def int) int {
	if p < 0 {
		return def
	}
	return p
}

// run serves until ctx ends; ready, if not nil, gets the gRPC address.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- net.Addr) int {
	return cmdrun.Main(ctx, "vda-agent", args, stderr, parse, func(o options) cmdrun.LogFlags { return o.logs },
		func(ctx context.Context, o options, log hclog.Logger) error { return serve(ctx, o, log, ready) })
}

func serve(ctx context.Context, o options, log hclog.Logger, ready chan<- net.Addr) error {
	o.cfg.Logger = log
	var reg *prometheus.Registry
	if o.metrics != "" {
		reg = metrics.NewRegistry()
		m, err := agentmetrics.New(reg)
		if err != nil {
			return err
		}
		o.cfg.Metrics = m
	}
	a, err := agent.New(o.cfg)
	if err != nil {
		return err
	}
	defer func() { _ = a.Close() }()
	if reg != nil {
		ctx2, stop, err := metrics.ServeFor(ctx, log, o.metrics, metrics.Handler(reg, a.Ready))
		if err != nil {
			return err
		}
		defer stop()
		ctx = ctx2
	}
	lis, err := net.Listen("tcp", o.cfg.ListenAddr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- lis.Addr()
	}
	cmdrun.NotifyReady(log)
	return a.Serve(ctx, lis)
}
