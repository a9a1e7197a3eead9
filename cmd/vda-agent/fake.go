package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// startFake runs a fake spdk_tgt on sock and initialises it as the
// tutorial does (bdev_set_options -d, framework_start_init). stop closes
// it.
func startFake(ctx context.Context, sock string, nvme []spdktest.NVMeDevice, log hclog.Logger) (stop func(), err error) {
	cfg := spdktest.DefaultConfig()
	cfg.SockPath, cfg.WaitForRPC, cfg.NVMeDevices, cfg.Logger = sock, true, nvme, log
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
	log.Info("fake spdk_tgt serving", "socket", sock)
	return func() { _ = t.Close() }, nil
}
