package spdktest_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/vda-io/vda/spdk/spdktest"
)

// Example embeds a fake spdk_tgt started with --wait-for-rpc and talks to it
// over its unix socket, as an agent would.
func Example() {
	dir, _ := os.MkdirTemp("", "spdk")
	defer os.RemoveAll(dir)
	cfg := spdktest.DefaultConfig()
	cfg.SockPath = filepath.Join(dir, "spdk.sock")
	cfg.WaitForRPC = true
	tgt, err := spdktest.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tgt.Close()

	c, _ := net.Dial("unix", tgt.SockPath())
	defer c.Close()
	r := bufio.NewReader(c)
	for _, req := range []string{
		`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":1}`,
		`{"jsonrpc":"2.0","method":"framework_start_init","id":2}`,
		`{"jsonrpc":"2.0","method":"bdev_malloc_create","params":{"name":"pd0","block_size":4096,"num_blocks":256},"id":3}`,
	} {
		fmt.Fprint(c, req)
		line, _ := r.ReadString('\n')
		fmt.Print(line)
	}
	fmt.Println(tgt.RPCCount("bdev_malloc_create"), tgt.TotalRPCs())
	// Output:
	// {"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"Method may only be called after framework is initialized using framework_start_init RPC."}}
	// {"jsonrpc":"2.0","id":2,"result":true}
	// {"jsonrpc":"2.0","id":3,"result":"pd0"}
	// 1 3
}
