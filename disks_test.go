package vda_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
)

// TestPhysicalDiskDevicesAreExclusive: two PDs of one DN never use the same
// aio file or NVMe device (their lvstores would overwrite each other), in
// any spelling of the PCI address; other DNs and malloc PDs are unaffected.
func TestPhysicalDiskDevicesAreExclusive(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	for i, dn := range []string{"dn1", "dn2"} {
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: dn, Listener: listener(nodeIP(0, i), "4420")})
		require.NoError(t, err)
	}
	create := func(dn, name, conf string) error { // conf as the CLI gives it
		pc, err := vda.ParsePDConf(conf)
		if err != nil {
			return err
		}
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: dn, Name: name, Conf: pc})
		return err
	}
	require.NoError(t, create("dn1", "a", `{"type":"aio","filename":"/dev/sdb"}`))
	require.ErrorIs(t, create("dn1", "b", `{"type":"aio","filename":"/dev/sdb"}`), vda.ErrAlreadyExists)
	require.NoError(t, create("dn1", "c", `{"type":"aio","filename":"/dev/sdc"}`))
	require.NoError(t, create("dn2", "a", `{"type":"aio","filename":"/dev/sdb"}`))

	require.NoError(t, create("dn1", "n", `{"type":"nvme","traddr":"01:00.0"}`))
	pd, err := c.GetPhysicalDisk(ctx, "dn1", "n")
	require.NoError(t, err)
	require.Equal(t, "0000:01:00.0", pd.Conf.TrAddr, "stored in canonical form")
	err = create("dn1", "n2", `{"type":"nvme","traddr":"0000:01:00.0"}`)
	require.ErrorIs(t, err, vda.ErrAlreadyExists)
	require.ErrorContains(t, err, `physical disk "n" on disk node "dn1" already uses nvme 0000:01:00.0`)
	require.ErrorIs(t, create("dn1", "n3", `{"type":"nvme","traddr":"0000:01:00.0"}`), vda.ErrAlreadyExists)
	require.ErrorIs(t, create("dn1", "n4", `{"type":"nvme","traddr":"0000:01:20.0"}`), vda.ErrInvalidArgument, "device numbers end at 0x1f")

	for _, name := range []string{"m1", "m2"} {
		require.NoError(t, create("dn1", name, `{"type":"malloc","size":134217728}`))
	}
	require.NoError(t, c.DeletePhysicalDisk(ctx, "dn1", "a"))
	require.NoError(t, create("dn1", "b", `{"type":"aio","filename":"/dev/sdb"}`), "free again after the delete")
}
