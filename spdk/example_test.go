package spdk_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vda-io/vda/spdk"
)

// fakeSPDK serves a few canned replies on a unix socket, standing in for spdk_tgt.
func fakeSPDK(path string) (stop func(), err error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				dec := json.NewDecoder(bufio.NewReader(nc))
				for {
					var req struct {
						ID     uint64 `json:"id"`
						Method string `json:"method"`
					}
					if dec.Decode(&req) != nil {
						return
					}
					reply := map[string]any{"jsonrpc": "2.0", "id": req.ID}
					switch req.Method {
					case "spdk_get_version":
						reply["result"] = map[string]any{"version": "SPDK v24.01", "fields": map[string]any{"major": 24, "minor": 1}}
					case "bdev_lvol_create":
						reply["result"] = "52647c40-97ab-4e6d-ae57-716de82e8e39"
					default:
						reply["error"] = map[string]any{"code": -19, "message": "No such device"}
					}
					b, _ := json.Marshal(reply)
					_, _ = nc.Write(append(b, '\n'))
				}
			}()
		}
	}()
	return func() { ln.Close() }, nil
}

func Example() {
	dir, _ := os.MkdirTemp("", "spdk-example")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "spdk.sock")
	stop, err := fakeSPDK(sock)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := spdk.Dial(ctx, sock)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	v, err := c.Version(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Version, "size_in_mib supported:", v.AtLeast(24, 1))

	uuid, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{
		LvsName: "lvs0", LvolName: "vd1", SizeInMiB: new(uint64(96)), ThinProvision: new(false),
	})
	fmt.Println(uuid, err)

	_, err = c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: "lvs0/missing"})
	fmt.Println(errors.Is(err, spdk.ErrNotFound))
	// Output:
	// SPDK v24.01 size_in_mib supported: true
	// 52647c40-97ab-4e6d-ae57-716de82e8e39 <nil>
	// true
}

func ExampleError() {
	// What bdev_nvme_get_controllers answers for an unknown controller: a positive 22.
	var err error = &spdk.Error{Method: "bdev_nvme_get_controllers", Code: 22, Message: "Controller c1 does not exist"}
	err = fmt.Errorf("probing controller: %w", err)

	fmt.Println(errors.Is(err, spdk.ErrNotFound))
	var se *spdk.Error
	if errors.As(err, &se) {
		fmt.Println(se.Method, se.Code)
	}
	// Output:
	// true
	// bdev_nvme_get_controllers 22
}
