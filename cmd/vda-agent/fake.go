package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// anyPortListener parses a --listener-conf whose trsvcid is "0" (any free
// port, which only the fake can pick), with port 1 in its place.
func anyPortListener(conf string) (nvmeof.TransportID, bool) {
	var m map[string]any
	if json.Unmarshal([]byte(conf), &m) != nil || m["trsvcid"] != "0" {
		return nvmeof.TransportID{}, false
	}
	m["trsvcid"] = "1"
	b, err := json.Marshal(m)
	if err != nil {
		return nvmeof.TransportID{}, false
	}
	l, err := nvmeof.ParseListenerConf(string(b))
	return l, err == nil
}

// reserveListener holds the node's NVMe-oF port for the fake, picking a
// free one (and making it the agent's listener) when o.anyNVMf.
func reserveListener(o *options) (*reserve.Port, error) {
	l := o.cfg.Listener
	port, err := strconv.Atoi(l.TrSvcID)
	if err != nil || o.anyNVMf {
		port = 0
	}
	held, err := reserve.TCP(l.TrAddr, port)
	if err != nil {
		return nil, fmt.Errorf("fake spdk: NVMe-oF listener: %w", err)
	}
	if o.anyNVMf {
		o.cfg.Listener, err = nvmeof.NewTransportID(l.TrType, l.AdrFam, l.TrAddr, strconv.Itoa(int(held.Addr().Port())))
		if err != nil {
			_ = held.Close()
			return nil, fmt.Errorf("fake spdk: NVMe-oF listener: %w", err)
		}
	}
	return held, nil
}

// startFake runs a fake spdk_tgt on sock and initialises it as the
// tutorial does (bdev_set_options -d, framework_start_init). stop closes
// it.
func startFake(ctx context.Context, sock string, nvme []spdktest.NVMeDevice, listener *reserve.Port,
	log hclog.Logger) (stop func(), err error) {
	cfg := spdktest.DefaultConfig()
	cfg.SockPath, cfg.WaitForRPC, cfg.NVMeDevices, cfg.Logger = sock, true, nvme, log
	cfg.Reserved = []*reserve.Port{listener}
	t, err := spdktest.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("fake spdk: %w", err)
	}
	c, err := spdk.Dial(ctx, sock)
	if err == nil {
		err = c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: new(false)})
		if err == nil {
			err = c.FrameworkStartInit(ctx)
		}
		_ = c.Close()
	}
	if err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("fake spdk: %w", err)
	}
	log.Info("fake spdk_tgt serving", "socket", sock, "listener", listener.String())
	return func() { _ = t.Close() }, nil
}
