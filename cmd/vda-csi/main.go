// Command vda-csi is VDA's Kubernetes CSI driver (package csi): one binary
// for the controller plugin (next to the provisioner, attacher and resizer
// sidecars; it talks to the portal with mutual TLS) and the node plugin
// (a DaemonSet; it connects volumes with nvme-cli).
//
//	vda-csi --mode controller --endpoint unix:///csi/csi.sock --addr-port portal.vda:9520 \
//	    --tls-cert /tls/csi.crt --tls-key /tls/csi.key --tls-ca /tls/ca.crt
//	vda-csi --mode node --endpoint unix:///csi/csi.sock --host-nqn "$(cat /etc/nvme/hostnqn)"
//
// --log-level (trace, debug, info, warn, error) and --log-format (text,
// json) are those of every VDA binary; at debug every CSI call is logged.
//
// It serves until SIGTERM or SIGINT. Usage errors exit with status 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/vda-io/vda/csi"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

// options are vda-csi's flags.
type options struct {
	portal   portalcli.Conn
	mode     string
	endpoint string
	nodeID   string
	hostNQN  string
	hostID   string
	defSize  int64
	maxVols  int64
	location string
	locFile  string
	version  bool
	logs     cmdrun.LogFlags
}

// newFlags is vda-csi's flag set, writing usage to stderr.
func newFlags(stderr io.Writer) (*pflag.FlagSet, *options) {
	fs := pflag.NewFlagSet("vda-csi", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	o.portal.Register(fs)
	fs.StringVar(&o.mode, "mode", "both", "controller, node or both")
	fs.StringVar(&o.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix:///path or tcp://host:port)")
	fs.StringVar(&o.nodeID, "node-id", "", "the node's CSI ID: its host NQN (same as --host-nqn)")
	fs.StringVar(&o.hostNQN, "host-nqn", "", "the node's NVMe host NQN (default: /etc/nvme/hostnqn)")
	fs.StringVar(&o.hostID, "host-id", "", "the node's NVMe host ID (default: /etc/nvme/hostid, if present)")
	fs.Int64Var(&o.defSize, "default-volume-size", 1<<30, "bytes of a volume requested without a capacity")
	fs.Int64Var(&o.maxVols, "max-volumes-per-node", 0, "volumes a node can attach (0: no limit)")
	fs.StringVar(&o.location, "location", "", "node mode: the node's VDA location, its topology segment "+csi.TopologyKey+
		" (a Kubernetes label value; default: the content of --location-file; empty: no topology)")
	fs.StringVar(&o.locFile, "location-file", "/etc/vda/location", "node mode: file holding the node's location, if present")
	logFlags := flag.NewFlagSet("logs", flag.ContinueOnError)
	o.logs.Register(logFlags)
	fs.AddGoFlagSet(logFlags)
	fs.BoolVar(&o.version, "version", false, "print the version (module version and VCS revision) and exit")
	return fs, o
}

// run serves until ctx ends; ready, if set, is closed once it listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- struct{}) int {
	fs, o := newFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.version {
		version.Print(stderr, "vda-csi")
		return 0
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "Error: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if err := o.logs.Validate(); err != nil {
		return usage("%v", err)
	}
	log := o.logs.Logger("vda-csi", stderr)
	cfg := csi.Config{DefaultVolumeBytes: o.defSize, MaxVolumesPerNode: o.maxVols, Logger: log}
	var ctrl, node bool
	switch o.mode {
	case "controller":
		ctrl = true
	case "node":
		node = true
	case "both":
		ctrl, node = true, true
	default:
		return usage("--mode %q: want controller, node or both", o.mode)
	}
	if ctrl {
		client, err := o.portal.Client()
		if err != nil {
			return usage("%v", err)
		}
		defer func() { _ = o.portal.Close() }()
		cfg.Portal = client
	}
	if node {
		nqn := o.hostNQN
		if nqn == "" {
			nqn = o.nodeID
		}
		if nqn == "" {
			b, err := os.ReadFile("/etc/nvme/hostnqn")
			if err != nil {
				return usage("--host-nqn missing and /etc/nvme/hostnqn unreadable: %v", err)
			}
			nqn = strings.TrimSpace(string(b))
		}
		if o.nodeID != "" && o.nodeID != nqn {
			return usage("--node-id %q differs from --host-nqn %q: the node ID is the host NQN", o.nodeID, nqn)
		}
		id := o.hostID
		if id == "" {
			if b, err := os.ReadFile("/etc/nvme/hostid"); err == nil {
				id = strings.TrimSpace(string(b))
			}
		}
		cfg.NodeID = nqn
		cfg.Connector = &csi.NVMeConnector{HostID: id}
		cfg.Location = o.location
		if cfg.Location == "" && o.locFile != "" {
			b, err := os.ReadFile(o.locFile)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return usage("--location-file: %v", err)
			}
			cfg.Location = strings.TrimSpace(string(b))
		}
	}
	d, err := csi.New(cfg)
	if err != nil {
		return usage("%v", err)
	}
	l, err := csi.Listen(o.endpoint)
	if err != nil {
		return usage("%v", err)
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(d.Interceptor))
	d.Register(s)
	log.Info("serving", "mode", o.mode, "endpoint", o.endpoint, "node_id", cfg.NodeID, "location", cfg.Location)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	if ready != nil {
		close(ready)
	}
	select {
	case <-ctx.Done():
		s.GracefulStop()
		log.Info("stopped")
		return 0
	case err := <-done:
		log.Error("exiting", "error", err)
		return 1
	}
}
