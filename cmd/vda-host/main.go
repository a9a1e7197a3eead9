// Command vda-host acts as an NVMe-oF host on the fake SPDK's simulated
// fabric (spdk/spdktest/fabric), for the dev cluster, demos and tests: it
// connects to an exporter with multipath (I/O goes to the ANA-optimized
// path and fails over to the others), writes and verifies seeded patterns,
// and writes numbered blocks through a failover and proves that every
// acknowledged write survived it. On a real deployment hosts use nvme-cli.
//
//	vda-host --addr-port 192.168.0.11:9520 write  --da-name da0 --exp-name exp0 --seed 7
//	vda-host --addr-port 192.168.0.11:9520 verify --da-name da0 --exp-name exp0 --seed 7
//	vda-host write --nqn nqn.2016-06.io.spdk:vda-exp-da0-exp0 \
//	    --host-nqn nqn.2016-06.io.spdk:host0 --path 192.168.0.16:4430 --path 192.168.0.17:4430
//
// With --da-name and --exp-name it asks the portal (like vda, with the
// same --addr-port and TLS flags) for the exporter's NQN, initiator NQN and
// controller paths; with --nqn, --host-nqn and --path it needs no portal.
// It prints JSON; errors go to stderr with exit status 1 when the I/O or a
// check failed and 2 for usage errors. It is a separate binary from vda so
// that the operator's CLI links no test fabric.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vda-io/vda/internal/portalcli"
)

// example starts every subcommand's example.
const example = "vda-host --addr-port 192.168.0.11:9520"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli holds the global flags and the portal connection of one invocation.
type cli struct {
	portal portalcli.Conn
	out    io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{out: stdout}
	defer func() { _ = c.portal.Close() }()
	return portalcli.Execute(ctx, c.rootCmd(), args, stdout, stderr)
}

func (c *cli) rootCmd() *cobra.Command {
	root := portalcli.Root("vda-host", "Act as a host on the fake SPDK's simulated fabric (dev cluster and tests)",
		c.writeCmd(false), c.writeCmd(true), c.runCmd(), c.checkCmd(), c.pathsCmd())
	root.Long = "vda-host connects to an exporter like an NVMe-oF host would, over the simulated fabric\n" +
		"of the fake SPDK (spdk/spdktest/fabric), with multipath: I/O goes to the ANA-optimized path and\n" +
		"fails over to the others. On a real deployment hosts use nvme-cli instead.\n\n" +
		"--da-name/--exp-name look the exporter up through the portal (--addr-port, TLS flags as for vda);\n" +
		"--nqn/--host-nqn/--path name it directly. Exit status: 0 success, 1 the I/O or a check failed,\n" +
		"2 a bad command line."
	root.Example = `  vda-host --addr-port 192.168.0.11:9520 write  --da-name da0 --exp-name exp0 --seed 7
  vda-host --addr-port 192.168.0.11:9520 verify --da-name da0 --exp-name exp0 --seed 7
  vda-host --addr-port 192.168.0.11:9520 run    --da-name da0 --exp-name exp0 --duration 30s --result /tmp/run.json
  vda-host --addr-port 192.168.0.11:9520 check  --da-name da0 --exp-name exp0 --result /tmp/run.json`
	c.portal.Register(root.PersistentFlags())
	return root
}
