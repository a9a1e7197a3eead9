// Command embedded is the smallest program that embeds VDA with failover:
// a memory store, the Cluster API, one disk node and two controller nodes
// (real agents on fake SPDK targets, reached in the process), a monitor,
// and one disk array with two controllers. It kills the node of the
// array's primary controller and watches the monitor move the primary.
//
//	go run ./examples/embedded
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/monitor"
	"github.com/vda-io/vda/store/memstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := memstore.New(memstore.DefaultConfig())
	if err != nil {
		return err
	}
	defer st.Close()
	api, err := vda.New(vda.DefaultConfig(st))
	if err != nil {
		return err
	}
	// The monitor reaches each node's agent in this process, as monitor m0.
	agents, err := monitor.NewInProcess("m0")
	if err != nil {
		return err
	}
	nodes := map[string]*agenttest.Node{}
	for _, name := range []string{"dn0", "cn0", "cn1"} {
		role := agent.Role(name[:2])
		n, err := agenttest.Start(ctx, agenttest.Config{Role: role, Name: name, Register: agents})
		if err != nil {
			return err
		}
		defer n.Close()
		nodes[name] = n
		spec := vda.NodeSpec{Name: name, Listener: n.Listener, Location: name}
		if role == agent.RoleDN {
			_, err = api.CreateDiskNode(ctx, spec)
			if err == nil {
				_, err = api.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: name, Name: "pd0",
					Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 134217728}})
			}
		} else {
			_, err = api.CreateControllerNode(ctx, spec)
		}
		if err != nil {
			return err
		}
	}
	cfg := monitor.DefaultConfig(st, "m0")
	cfg.Transport = agents
	mon, err := monitor.New(cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, err := api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}}); err != nil {
		return err
	}
	first, err := waitPrimary(ctx, api, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "da0 is served by its primary controller on %s\n", first.CNName)
	nodes[first.CNName].Kill() // its agent stops and its SPDK crashes
	killed := time.Now()
	second, err := waitPrimary(ctx, api, first.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s killed: da0's primary is on %s after %v\n", first.CNName, second.CNName,
		time.Since(killed).Round(100*time.Millisecond))
	return nil
}

// waitPrimary waits until da0 is initialized and its primary controller,
// other than controller not, reports healthy.
func waitPrimary(ctx context.Context, api *vda.Cluster, not string) (vda.Cntlr, error) {
	da, err := api.WaitDiskArray(ctx, "da0", func(da vda.DiskArray, err error) bool {
		p, ok := da.Primary()
		return err == nil && ok && p.ID != not && da.Initialized && da.Status.Part(p.ID).Health == vda.HealthHealthy
	})
	p, _ := da.Primary()
	return p, err
}
