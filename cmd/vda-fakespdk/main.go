// Command vda-fakespdk runs the fake SPDK target (spdk/spdktest) on a unix
// socket, for the dev cluster and manual testing:
//
//	vda-fakespdk --rpc-socket /tmp/dn.sock [--wait-for-rpc] \
//	    [--nvme 0000:01:00.0,file=/var/tmp/nvme0.img,size=1GiB] [--nvme 0000:02:00.0,size=512MiB]
//
// Each --nvme puts a local NVMe SSD on the fake's PCIe bus, for
// bdev_nvme_attach_controller with trtype PCIe: file-backed devices keep
// their bytes across restarts of this process, memory-backed ones do not.
//
// Each --reserve holds a TCP port for the fake's NVMe-oF listeners for the
// life of the process (127.0.0.1 or 127.0.0.1:0: any free port): a listener
// that nvmf_subsystem_add_listener adds on its address serves on the
// reservation, and connections are refused until then, with no window in
// which another process can take the port. --reserved-file writes the
// reserved addresses (host:port, one a line, in --reserve order) to a file
// before the RPC socket is served, for a harness that starts many fakes:
//
//	vda-fakespdk -r /tmp/cn0.sock --wait-for-rpc --reserve 127.0.0.1 --reserved-file /tmp/cn0.addr
//
// It stops on SIGINT, SIGTERM or the spdk_kill_instance RPC.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vda-io/vda/internal/atomicfile"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/version"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cfg := spdktest.DefaultConfig()
	fs := flag.NewFlagSet("vda-fakespdk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.SockPath, "rpc-socket", "/var/tmp/spdk.sock", "JSON-RPC unix socket path")
	fs.StringVar(&cfg.SockPath, "r", "/var/tmp/spdk.sock", "shorthand for --rpc-socket")
	fs.BoolVar(&cfg.WaitForRPC, "wait-for-rpc", false, "wait for framework_start_init before initializing")
	fs.DurationVar(&cfg.ExamineDelay, "examine-delay", spdktest.DefaultExamineDelay, "how long bdev_examine takes to find an lvstore")
	var reserved []*reserve.Port
	defer func() {
		for _, p := range reserved {
			_ = p.Close()
		}
	}()
	fs.Func("reserve", "hold a TCP port for NVMe-oF listeners: `IP[:PORT]` (no port or 0: any free one; repeatable)", func(v string) error {
		p, err := reservePort(v)
		if err == nil {
			reserved = append(reserved, p)
		}
		return err
	})
	var reservedFile string
	fs.StringVar(&reservedFile, "reserved-file", "", "write the --reserve addresses (host:port, one a line) to this `file` before serving")
	fs.Func("nvme", "local NVMe device `ADDR,file=PATH[,size=SIZE][,block-size=N]` or ADDR,size=SIZE (repeatable)", func(v string) error {
		d, err := spdktest.ParseNVMeDevice(v)
		if err == nil {
			cfg.NVMeDevices = append(cfg.NVMeDevices, d)
		}
		return err
	})
	var logs cmdrun.LogFlags
	logs.Register(fs)
	showVersion := version.Flag(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		version.Print(stderr, "vda-fakespdk")
		return 0
	}
	if err := logs.Validate(); err != nil {
		fmt.Fprintln(stderr, "vda-fakespdk:", err)
		return 2
	}
	if reservedFile != "" {
		if len(reserved) == 0 {
			fmt.Fprintln(stderr, "vda-fakespdk: --reserved-file needs a --reserve")
			return 2
		}
		var addrs strings.Builder
		for _, p := range reserved {
			addrs.WriteString(p.String() + "\n")
		}
		if err := atomicfile.Write(reservedFile, []byte(addrs.String()), 0o644); err != nil {
			fmt.Fprintln(stderr, "vda-fakespdk:", err)
			return 1
		}
	}
	cfg.Reserved = reserved
	cfg.Logger = logs.Logger("vda-fakespdk", stderr)
	t, err := spdktest.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Logger.Info("serving", "socket", cfg.SockPath, "wait_for_rpc", cfg.WaitForRPC)
	if err := t.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// reservePort reserves the port of v, an IP literal with an optional
// port ("127.0.0.1", "127.0.0.1:0", "[::1]:4420").
func reservePort(v string) (*reserve.Port, error) {
	if ip, err := netip.ParseAddr(v); err == nil {
		return reserve.TCP(ip.String(), 0)
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		return nil, fmt.Errorf("not IP or IP:PORT: %q", v)
	}
	return reserve.TCP(ap.Addr().String(), int(ap.Port()))
}
