package nvmetcp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/vda-io/vda/nvmeof/nvmetcp"
)

// Connect to one controller, write a block and read it back.
func ExampleConnect() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nvmetcp.Connect(ctx, "192.168.0.16:4430", "nqn.2016-06.io.spdk:vda-exp-da0-exp0",
		nvmetcp.Options{HostNQN: "nqn.2016-06.io.spdk:host0"})
	if err != nil {
		var se *nvmetcp.StatusError
		if errors.As(err, &se) && se.SC == nvmetcp.SCConnectInvalidHost {
			log.Fatal("this host is not on the subsystem's allow-list")
		}
		log.Fatal(err)
	}
	defer c.Close()
	ns, err := c.Namespace(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("namespace %s: %d blocks of %d bytes, ANA %v\n", ns.UUID, ns.Blocks, ns.BlockSize, c.ANAState(1))
	block := make([]byte, ns.BlockSize)
	copy(block, "hello")
	if err := c.WriteAt(ctx, 1, block, 0); err != nil {
		switch {
		case nvmetcp.IsPathError(err):
			log.Fatal("try another controller of the subsystem: ", err)
		case nvmetcp.IsTransportError(err):
			log.Fatal("the connection failed; the write may or may not have landed: ", err)
		}
		log.Fatal(err)
	}
	if err := c.ReadAt(ctx, 1, block, 0); err != nil {
		log.Fatal(err)
	}
}

// Reach one subsystem through two controllers; I/O follows the optimized
// path and survives the loss of either.
func ExampleNewMultipath() {
	m, err := nvmetcp.NewMultipath([]string{"192.168.0.16:4430", "192.168.0.17:4430"},
		"nqn.2016-06.io.spdk:vda-exp-da0-exp0",
		nvmetcp.MultipathOptions{Options: nvmetcp.Options{HostNQN: "nqn.2016-06.io.spdk:host0"}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// Each call retries on the other paths until it succeeds or ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, err := m.Namespace(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.WriteAt(ctx, 1, make([]byte, 8*ns.BlockSize), 0); err != nil {
		log.Fatal(err)
	}
	for _, p := range m.Paths() {
		fmt.Println(p.Addr, p.Connected, p.ANAState, p.IOs)
	}
}
