package spdktest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// TestDrivenByTheRealClient runs part of the disk-node recipe through the
// spdk client package, so the fake and the client agree on the wire format
// and on the error mapping.
func TestDrivenByTheRealClient(t *testing.T) {
	srv := spdktest.NewServer(t, spdktest.WithWaitForRPC())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := spdk.Dial(ctx, srv.SockPath())
	require.NoError(t, err)
	defer c.Close()

	v, err := c.SpdkGetVersion(ctx)
	require.NoError(t, err)
	require.True(t, v.AtLeast(24, 1))
	_, err = c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{})
	require.ErrorIs(t, err, spdk.ErrWrongPhase)
	f := false
	require.NoError(t, c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: &f}))
	require.NoError(t, c.FrameworkStartInit(ctx))

	_, err = c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: "pd"})
	require.ErrorIs(t, err, spdk.ErrNotFound)
	name, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "pd", BlockSize: 4096, NumBlocks: 32768})
	require.NoError(t, err)
	require.Equal(t, "pd", name)
	_, err = c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "pd", BlockSize: 4096, NumBlocks: 8})
	require.ErrorIs(t, err, spdk.ErrExists)
	require.NoError(t, c.BdevExamine(ctx, spdk.NameParams{Name: "pd"}))
	_, err = c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{LvsName: "lvs"})
	require.ErrorIs(t, err, spdk.ErrNotFound)
	lvsUUID, err := c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreParams{BdevName: "pd", LvsName: "lvs", ClusterSz: 4 << 20, ClearMethod: "none"})
	require.NoError(t, err)
	stores, err := c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{LvsName: "lvs"})
	require.NoError(t, err)
	require.Equal(t, lvsUUID, stores[0].UUID)
	require.Equal(t, uint64(31), stores[0].TotalDataClusters)
	size := uint64(96)
	lvUUID, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: "vd", LvsName: "lvs", SizeInMiB: &size})
	require.NoError(t, err)
	big := uint64(1024)
	_, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: "big", LvsName: "lvs", SizeInMiB: &big})
	require.ErrorIs(t, err, spdk.ErrNoSpace)
	bdevs, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: "lvs/vd"})
	require.NoError(t, err)
	require.Equal(t, lvUUID, bdevs[0].Name)
	require.Equal(t, "Logical Volume", bdevs[0].ProductName)

	// Only read RPCs on a no-op pass are visible in the counters.
	srv.ResetCounts()
	_, err = c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{})
	require.NoError(t, err)
	require.Equal(t, 1, srv.TotalRPCs())
	require.Equal(t, []string{"bdev_get_bdevs"}, srv.CalledMethods())

	// A crash breaks the connection; the client reconnects after Restart.
	srv.Crash()
	_, err = c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{})
	require.True(t, errors.Is(err, spdk.ErrConnection) || errors.Is(err, spdk.ErrOutcomeUnknown), "got %v", err)
	require.NoError(t, srv.Restart(false))
	require.Eventually(t, func() bool {
		bs, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{})
		return err == nil && len(bs) == 0
	}, 10*time.Second, 10*time.Millisecond)
}

// TestPCIeThroughTheRealClient attaches a local NVMe device with the typed
// client and checks the error mapping of SPDK's answers.
func TestPCIeThroughTheRealClient(t *testing.T) {
	srv := spdktest.NewServer(t, spdktest.WithNVMeDevice(spdktest.NVMeDevice{TrAddr: "0000:81:00.0", SizeBytes: 32 << 20}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := spdk.Dial(ctx, srv.SockPath())
	require.NoError(t, err)
	defer c.Close()

	names, err := c.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerParams{Name: "pd0", TRType: "PCIe", TRAddr: "0000:81:00.0"})
	require.NoError(t, err)
	require.Equal(t, []string{"pd0n1"}, names)
	_, err = c.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerParams{Name: "pd1", TRType: "pcie", TRAddr: "0000:82:00.0"})
	require.ErrorIs(t, err, spdk.ErrNotFound)
	_, err = c.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerParams{Name: "pd1", TRType: "pcie", TRAddr: "0000:81:00.0"})
	require.ErrorIs(t, err, spdk.ErrExists)
	ctrls, err := c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{Name: "pd0"})
	require.NoError(t, err)
	require.Equal(t, "PCIe", ctrls[0].Ctrlrs[0].TRID.TRType)
	require.Equal(t, "0000:81:00.0", ctrls[0].Ctrlrs[0].TRID.TRAddr)
	bdevs, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: "pd0n1"})
	require.NoError(t, err)
	require.Equal(t, uint64(32<<20), uint64(bdevs[0].BlockSize)*bdevs[0].NumBlocks)
	require.Equal(t, "0000:81:00.0", bdevs[0].DriverSpecific.NVMe[0].PCIAddress)
	require.NoError(t, c.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerParams{Name: "pd0"}))
	_, err = c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: "pd0n1"})
	require.ErrorIs(t, err, spdk.ErrNotFound)
}
