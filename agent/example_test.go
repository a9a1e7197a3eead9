package agent_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest"
)

// A disk-node agent over a fake spdk_tgt, called as a monitor would.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	fake, err := spdktest.New(spdktest.Config{SockPath: filepath.Join(dir, "dn.sock")})
	if err != nil {
		panic(err)
	}
	defer fake.Close()

	cfg := agent.DefaultConfig(agent.RoleDN)
	cfg.SPDKAddr = fake.SockPath()
	cfg.Listener, _ = nvmeof.ParseListenerConf(`{"trtype":"tcp","traddr":"127.0.0.1","adrfam":"ipv4","trsvcid":"4420"}`)
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Insecure = true // production agents use mutual TLS (cfg.TLS): only a monitor may Sync
	a, err := agent.New(cfg)
	if err != nil {
		panic(err)
	}
	defer a.Close()
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- a.Serve(ctx, lis) }()

	c, _ := agent.Dial(ctx, lis.Addr().String())
	defer c.Close()
	// The monitor sends the store revision it read and the agent ID it
	// bound the node to (from Health).
	reply, err := c.Sync(ctx, &agentpb.SyncRequest{Generation: 1, StoreRevision: 1, NodeId: nvmeof.NewID(),
		AgentId: a.AgentID(), State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{
			Pds: []*agentpb.PdSpec{{Id: nvmeof.NewID(), Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: 128 << 20}}}},
		}}})
	if err != nil {
		panic(err)
	}
	for _, o := range reply.Objects {
		fmt.Println(o.Kind, o.Ok, o.TotalBytes>>20, "MiB")
	}
	h, _ := c.Health(ctx, &agentpb.HealthRequest{})
	fmt.Println(h.Role, h.Generation)
	stop()
	fmt.Println(<-served)
	// Output:
	// KIND_PD true 124 MiB
	// dn 1
	// <nil>
}
