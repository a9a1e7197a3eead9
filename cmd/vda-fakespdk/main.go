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
// It stops on SIGINT, SIGTERM or the spdk_kill_instance RPC.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/internal/version"
	"github.com/vda-io/vda/spdk/spdktest"
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
