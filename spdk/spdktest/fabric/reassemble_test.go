package fabric

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// TestLvstoreReassembledOnAnotherControllerNode is the fake's end to end
// data path: two disk nodes export a disk each; controller A builds a
// raid0 over the remote namespaces, an lvstore and an lvol, and writes;
// controller B connects to the same disks, re-assembles the raid0 and
// reads the same lvol bytes. Another member order does not load.
func TestLvstoreReassembledOnAnotherControllerNode(t *testing.T) {
	const mib = 1 << 20
	_, t1 := newTarget(t, blockdev.NewMemory(512, 96*mib/512))
	_, t2 := newTarget(t, blockdev.NewMemory(512, 96*mib/512))

	members := func(host string) []blockdev.Device {
		a, b := dial(t, t1, host), dial(t, t2, host)
		return []blockdev.Device{a.Device(1), b.Device(1)}
	}
	ra, err := blockdev.NewRaid0(members(host1), 64)
	require.NoError(t, err)
	lvs, err := blockdev.CreateLvstore(ra, blockdev.LvstoreOptions{Name: "lvs"})
	require.NoError(t, err)
	require.Equal(t, uint64(47), lvs.TotalDataClusters())
	vol, err := lvs.CreateLvol("vol", "", 16*mib, false, "")
	require.NoError(t, err)
	data := pattern(99, 640<<10) // spans many strips of both members
	_, err = vol.WriteAt(data, 3*mib+512)
	require.NoError(t, err)

	mb := members(host2)
	rb, err := blockdev.NewRaid0(mb, 64)
	require.NoError(t, err)
	again, err := blockdev.LoadLvstore(rb)
	require.NoError(t, err)
	require.Equal(t, lvs.UUID(), again.UUID())
	got, ok := again.Lvol("vol")
	require.True(t, ok)
	require.Equal(t, vol.UUID(), got.UUID())
	buf := make([]byte, len(data))
	_, err = got.ReadAt(buf, 3*mib+512)
	require.NoError(t, err)
	require.Equal(t, data, buf)

	swapped, err := blockdev.NewRaid0([]blockdev.Device{mb[1], mb[0]}, 64)
	require.NoError(t, err)
	_, err = blockdev.LoadLvstore(swapped)
	require.ErrorIs(t, err, blockdev.ErrNoLvstore)
}
