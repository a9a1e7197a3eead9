// Command cluster embeds a whole VDA cluster in one process on the fake
// SPDK (package devcluster): it creates a disk array with two controllers,
// exports it to a host, writes through it as the host, kills the node of
// the primary controller while the host keeps writing, and reads everything
// back through the new primary.
//
//	go run ./examples/cluster
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

const hostNQN = "nqn.2016-06.io.spdk:host0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "vda-example")
	if err == nil {
		defer os.RemoveAll(dir)
		err = run(ctx, dir, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// run does the whole demonstration with the cluster's data in dir.
func run(ctx context.Context, dir string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := devcluster.New(devcluster.Config{
		DataDir: dir, StoreURI: "memory://", AnyPorts: true, Register: true, PDSizeBytes: 256 << 20,
		// Fail a node after 3 refused probes 100 ms apart, or 5 s without an
		// answer; a node that failed takes no primaries for 10 s after it is back.
		Failover: failover.Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: time.Second,
			SlowTimeout: 5 * time.Second, HoldDown: 10 * time.Second},
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-c.Ready():
	case err := <-done:
		return err
	}

	// The same calls the portal serves, as a Go API.
	api := c.API()
	if _, err := api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20,
		PhysicalSizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}}); err != nil {
		return err
	}
	if _, err := api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: hostNQN}); err != nil {
		return err
	}
	exp, err := waitExported(ctx, api)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "exported %s on %d controllers\n", exp.NQN, len(exp.Ports))

	// A host with a path to every controller (NVMe multipath).
	var paths []fabric.TransportID
	for _, p := range exp.Ports {
		paths = append(paths, fabric.TransportID{TrType: "TCP", AdrFam: "IPv4", TrAddr: p.CNListener.TrAddr, TrSvcID: p.CNListener.TrSvcID})
	}
	host, err := fabric.NewMultipath(paths, exp.NQN, hostNQN, fabric.DefaultMultipathOptions())
	if err != nil {
		return err
	}
	defer host.Close()

	// The host writes numbered blocks while the primary's node dies.
	da, err := api.GetDiskArray(ctx, "da0")
	if err != nil {
		return err
	}
	primary, _ := da.Primary()
	stopWrites := make(chan struct{})
	type result struct {
		res fabric.SeqResult
		err error
	}
	results := make(chan result, 1)
	acked := make(chan struct{}, 1)
	go func() {
		res, err := fabric.RunSeq(ctx, host, fabric.SeqWorkload{NSID: 1, BlockSize: 4096, Blocks: 1024,
			Stop: stopWrites, OnAck: func(n uint64) {
				if n == 100 {
					acked <- struct{}{}
				}
			}})
		results <- result{res, err}
	}()
	select {
	case <-acked:
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintf(out, "killing %s, the node of primary controller %d\n", primary.CNName, primary.Idx)
	c.Node(primary.CNName).Kill()
	killed := time.Now()
	for {
		da, err = api.GetDiskArray(ctx, "da0")
		if err != nil {
			return err
		}
		if p, _ := da.Primary(); p.ID != primary.ID && da.Status.Part(p.ID).Health == vda.HealthHealthy {
			fmt.Fprintf(out, "controller %d is the primary after %v\n", p.Idx, time.Since(killed).Round(100*time.Millisecond))
			break
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
	close(stopWrites)
	r := <-results
	if r.err != nil {
		return r.err
	}
	if err := fabric.VerifySeq(ctx, host, r.res); err != nil {
		return err
	}
	fmt.Fprintf(out, "all %d acknowledged writes read back (longest pause %v)\n", r.res.Acked,
		r.res.MaxGap.Round(100*time.Millisecond))
	return nil
}

// waitExported waits until the exporter's primary port reports healthy.
func waitExported(ctx context.Context, api *vda.Cluster) (vda.Exporter, error) {
	for {
		exp, err := api.GetExporter(ctx, "da0", "exp0")
		if err != nil {
			return exp, err
		}
		da, err := api.GetDiskArray(ctx, "da0")
		if err != nil {
			return exp, err
		}
		if p, ok := da.Primary(); ok {
			for _, port := range exp.Ports {
				if port.CntlrIdx == p.Idx && exp.Status.Part(port.ID).Health == vda.HealthHealthy {
					return exp, nil
				}
			}
		}
		if err := pause(ctx); err != nil {
			return exp, err
		}
	}
}

func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(20 * time.Millisecond):
		return nil
	}
}
