package alloc_test

import (
	"fmt"
	"testing"

	"github.com/vda-io/vda/alloc"
)

// benchCandidates is n disks on n/4 nodes in 8 locations, varied fill, and
// n/20 controller nodes with varied load.
func benchCandidates(n int) ([]alloc.Disk, []alloc.Node) {
	disks := make([]alloc.Disk, 0, n)
	for i := range n {
		node := i % (n / 4)
		disks = append(disks, alloc.Disk{
			ID: fmt.Sprintf("dn%05d/pd%05d", node, i), Node: fmt.Sprintf("dn%05d", node), Location: fmt.Sprintf("rack%d", node%8),
			CapacityBytes: 64 << 30, FreeBytes: 64<<30 - uint64(i%7)<<30,
		})
	}
	nodes := make([]alloc.Node, 0, n/20)
	for i := range n / 20 {
		nodes = append(nodes, alloc.Node{ID: fmt.Sprintf("cn%05d", i), Location: fmt.Sprintf("rack%d", i%8), Load: i % 5})
	}
	return disks, nodes
}

// BenchmarkDefault is one placement decision (4 VDs, 2 controllers) over
// 1k and 10k disks.
func BenchmarkDefault(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("pds=%d", n), func(b *testing.B) {
			disks, nodes := benchCandidates(n)
			req := alloc.Request{VDs: 4, Controllers: 2, VDSizeBytes: 20 << 20, Seed: "da"}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				req.Attempt = i
				if _, err := (alloc.Default{}).Place(req, disks, nodes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
