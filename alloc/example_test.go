package alloc_test

import (
	"fmt"

	"github.com/vda-io/vda/alloc"
)

// Two VDs and two controllers over two racks: one of each per rack, the
// emptiest disks, and the least-loaded node of each rack as controllers
// (the less loaded of the two is the primary).
func ExampleDefault_Place() {
	disks := []alloc.Disk{
		{ID: "dn1/pd0", Node: "dn1", Location: "rack1", CapacityBytes: 100 << 30, FreeBytes: 90 << 30},
		{ID: "dn2/pd0", Node: "dn2", Location: "rack1", CapacityBytes: 100 << 30, FreeBytes: 20 << 30},
		{ID: "dn3/pd0", Node: "dn3", Location: "rack2", CapacityBytes: 100 << 30, FreeBytes: 50 << 30},
		{ID: "dn4/pd0", Node: "dn4", Location: "rack2", CapacityBytes: 100 << 30, FreeBytes: 99 << 30, Unavailable: true},
	}
	nodes := []alloc.Node{
		{ID: "cn1", Location: "rack1", Load: 7},
		{ID: "cn2", Location: "rack1", Load: 2},
		{ID: "cn3", Location: "rack2", Load: 1},
	}
	p, err := alloc.Default{}.Place(alloc.Request{VDs: 2, VDSizeBytes: 10 << 30, Controllers: 2, Seed: "da1"}, disks, nodes)
	if err != nil {
		fmt.Println(err)
		return
	}
	for vd, i := range p.Disks {
		fmt.Println("vd", vd, "on", disks[i].ID)
	}
	for c, i := range p.Nodes {
		fmt.Println("controller", c, "on", nodes[i].ID)
	}
	_, err = alloc.Default{}.Place(alloc.Request{VDs: 3, VDSizeBytes: 60 << 30, Controllers: 1}, disks, nodes)
	fmt.Println(err)
	// Output:
	// vd 0 on dn1/pd0
	// vd 1 on dn3/pd0
	// controller 0 on cn3
	// controller 1 on cn2
	// alloc: need 3 online physical disks with 64424509440 bytes free, found 1
}
