package blockdev_test

import (
	"bytes"
	"fmt"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// An lvstore written through one raid0 loads again from the same members
// assembled in the same order with the same strip size, and not otherwise.
func Example() {
	a, b := blockdev.NewMemory(512, 96<<20/512), blockdev.NewMemory(512, 96<<20/512)
	r, _ := blockdev.NewRaid0([]blockdev.Device{a, b}, 64)
	lvs, _ := blockdev.CreateLvstore(r, blockdev.LvstoreOptions{Name: "lvs0"})
	vol, _ := lvs.CreateLvol("vol0", "", 80<<20+1, false, "")
	_, _ = vol.WriteAt(bytes.Repeat([]byte("vda!"), 1024), 0)
	fmt.Println(lvs.TotalDataClusters(), vol.SizeBytes()>>20, lvs.FreeClusters())

	again, _ := blockdev.NewRaid0([]blockdev.Device{a, b}, 64)
	loaded, err := blockdev.LoadLvstore(again)
	fmt.Println(err, loaded.UUID() == lvs.UUID())
	v, _ := loaded.Lvol("vol0")
	p := make([]byte, 4096)
	_, _ = v.ReadAt(p, 0)
	fmt.Println(string(p[:8]))

	swapped, _ := blockdev.NewRaid0([]blockdev.Device{b, a}, 64)
	_, err = blockdev.LoadLvstore(swapped)
	fmt.Println(err != nil)
	// Output:
	// 47 84 26
	// <nil> true
	// vda!vda!
	// true
}
