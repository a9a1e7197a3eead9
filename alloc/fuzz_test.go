package alloc_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/vda-io/vda/alloc"
)

// fuzzCluster builds candidates from fuzz bytes: 3 bytes per disk (node,
// capacity, free fraction and availability), then 2 per controller node.
// A node's location is a function of the node, as in a real cluster; so
// is whether its disks are avoided (another placer's share).
func fuzzCluster(data []byte, locations uint8) ([]alloc.Disk, []alloc.Node) {
	locs := int(locations%5) + 1
	var disks []alloc.Disk
	for len(data) >= 3 && len(disks) < 64 {
		node, capB, freeB := int(data[0]%16), data[1], data[2]
		data = data[3:]
		if capB == 0xff { // a separator: the rest are controller nodes
			break
		}
		capacity := uint64(capB%8) * gib
		disks = append(disks, alloc.Disk{
			ID: fmt.Sprintf("pd%02d", len(disks)), Node: fmt.Sprintf("dn%02d", node), Location: fmt.Sprintf("l%d", node%locs),
			CapacityBytes: capacity, FreeBytes: capacity / 16 * uint64(freeB%17), Unavailable: freeB >= 0xf0,
			Avoid: node%3 == 0,
		})
	}
	var nodes []alloc.Node
	for len(data) >= 2 && len(nodes) < 32 {
		nodes = append(nodes, alloc.Node{
			ID: fmt.Sprintf("cn%02d", len(nodes)), Location: fmt.Sprintf("l%d", int(data[0])%locs),
			Load: int(data[1]%8) * 3, Unavailable: data[1] >= 0xf0, Avoid: data[0]&0x40 != 0,
		})
		data = data[2:]
	}
	return disks, nodes
}

func distinct[T any](idx []int, items []T, key func(T) string) int {
	seen := map[string]bool{}
	for _, i := range idx {
		seen[key(items[i])] = true
	}
	return len(seen)
}

// checkPlacement fails unless p (or err) keeps every invariant of a Policy
// and the spreading promise of Default.
func checkPlacement(t *testing.T, req alloc.Request, disks []alloc.Disk, nodes []alloc.Node, p alloc.Placement, err error) {
	t.Helper()
	var okDisks, okNodes []int
	for i, d := range disks {
		if !d.Unavailable && d.CapacityBytes > 0 && d.FreeBytes >= req.VDSizeBytes {
			okDisks = append(okDisks, i)
		}
	}
	for i, n := range nodes {
		if !n.Unavailable {
			okNodes = append(okNodes, i)
		}
	}
	if err != nil {
		if !errors.Is(err, alloc.ErrExhausted) {
			t.Fatalf("error %v does not match ErrExhausted", err)
		}
		if len(okDisks) >= req.VDs && len(okNodes) >= req.Controllers {
			t.Fatalf("refused %+v with %d usable disks and %d usable nodes: %v", req, len(okDisks), len(okNodes), err)
		}
		return
	}
	if len(p.Disks) != req.VDs || len(p.Nodes) != req.Controllers {
		t.Fatalf("placed %d disks and %d nodes for %+v", len(p.Disks), len(p.Nodes), req)
	}
	for _, i := range p.Disks {
		if !slices.Contains(okDisks, i) {
			t.Fatalf("chose unusable disk %d %+v for %d bytes", i, disks[i], req.VDSizeBytes)
		}
	}
	for _, i := range p.Nodes {
		if !slices.Contains(okNodes, i) {
			t.Fatalf("chose unavailable node %+v", nodes[i])
		}
	}
	id := func(d alloc.Disk) string { return d.ID }
	if distinct(p.Disks, disks, id) != req.VDs {
		t.Fatalf("two VDs on one disk: %v", p.Disks)
	}
	if distinct(p.Nodes, nodes, func(n alloc.Node) string { return n.ID }) != req.Controllers {
		t.Fatalf("two controllers on one node: %v", p.Nodes)
	}
	spreads := []struct {
		what       string
		got, avail int
		n          int
	}{
		{"disk locations", distinct(p.Disks, disks, func(d alloc.Disk) string { return d.Location }), distinct(okDisks, disks, func(d alloc.Disk) string { return d.Location }), req.VDs},
		{"disk nodes", distinct(p.Disks, disks, func(d alloc.Disk) string { return d.Node }), distinct(okDisks, disks, func(d alloc.Disk) string { return d.Node }), req.VDs},
		{"node locations", distinct(p.Nodes, nodes, func(n alloc.Node) string { return n.Location }), distinct(okNodes, nodes, func(n alloc.Node) string { return n.Location }), req.Controllers},
	}
	for _, s := range spreads {
		if s.got != min(s.n, s.avail) {
			t.Fatalf("%s: spread over %d of %d for %d", s.what, s.got, s.avail, s.n)
		}
	}
	// Among equal loads the request's tie order decides, not the ID.
	if !slices.IsSortedFunc(p.Nodes, func(a, b int) int { return cmp.Compare(nodes[a].Load, nodes[b].Load) }) {
		t.Fatalf("controllers not least-loaded first: %v", p.Nodes)
	}
}

func FuzzDefault(f *testing.F) {
	f.Add([]byte("\x01\x07\x10\x02\x07\x10\x03\x07\x08\x00\xff\x00\x00\x01\x01\x02"), uint8(2), uint8(2), uint8(2), uint16(512), "da", uint8(0))
	f.Add([]byte("\x01\x07\x10\x01\x07\x10\x01\x07\xf1\x05\x00\x00"), uint8(0), uint8(3), uint8(1), uint16(64), "x", uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, locations, vds, ctrls uint8, sizeMiB uint16, seed string, attempt uint8) {
		disks, nodes := fuzzCluster(data, locations)
		req := alloc.Request{VDs: int(vds % 9), Controllers: int(ctrls % 5), VDSizeBytes: uint64(sizeMiB) << 20, Seed: seed, Attempt: int(attempt)}
		// Place until refused, reserving what each placement takes: no
		// placement over-commits a disk that earlier ones filled.
		for round := 0; round < 6; round++ {
			p, err := alloc.Default{}.Place(req, disks, nodes)
			checkPlacement(t, req, disks, nodes, p, err)
			if err != nil {
				return
			}
			again, err := alloc.Default{}.Place(req, disks, nodes)
			if err != nil || !slices.Equal(p.Disks, again.Disks) || !slices.Equal(p.Nodes, again.Nodes) {
				t.Fatalf("not deterministic: %v then %v (%v)", p, again, err)
			}
			rd, rn := slices.Clone(disks), slices.Clone(nodes)
			slices.Reverse(rd)
			slices.Reverse(rn)
			rev, err := alloc.Default{}.Place(req, rd, rn)
			if err != nil || !slices.Equal(diskIDs(p, disks), diskIDs(rev, rd)) || !slices.Equal(nodeIDs(p, nodes), nodeIDs(rev, rn)) {
				t.Fatalf("depends on input order: %v vs %v (%v)", diskIDs(p, disks), diskIDs(rev, rd), err)
			}
			for _, i := range p.Disks {
				disks[i].FreeBytes -= req.VDSizeBytes
			}
			for _, i := range p.Nodes {
				nodes[i].Load++
			}
			req.Seed += "'"
		}
	})
}
