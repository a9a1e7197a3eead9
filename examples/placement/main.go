// Command placement plugs a custom placement policy into the VDA Cluster
// API: instead of the default (emptiest disks first, spread over failure
// domains), it packs virtual disks onto the fullest disks that still fit,
// keeping whole disks free for large arrays later.
//
//	go run ./examples/placement
package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/alloc"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store/memstore"
)

// pack is an alloc.Policy: best fit for disks (least free space that still
// holds a VD), least-loaded nodes for controllers. Like every Policy it is
// pure and deterministic, and says what was short when it cannot place.
type pack struct{}

var _ alloc.Policy = pack{}

func (pack) Place(req alloc.Request, disks []alloc.Disk, nodes []alloc.Node) (alloc.Placement, error) {
	var fit []int
	for i, d := range disks {
		if !d.Unavailable && d.FreeBytes >= req.VDSizeBytes {
			fit = append(fit, i)
		}
	}
	if len(fit) < req.VDs {
		return alloc.Placement{}, &alloc.Shortage{What: "disks with room for a VD", Need: req.VDs, Found: len(fit)}
	}
	slices.SortFunc(fit, func(a, b int) int {
		return cmp.Or(cmp.Compare(disks[a].FreeBytes, disks[b].FreeBytes), cmp.Compare(disks[a].ID, disks[b].ID))
	})
	var up []int
	for i, n := range nodes {
		if !n.Unavailable {
			up = append(up, i)
		}
	}
	if len(up) < req.Controllers {
		return alloc.Placement{}, &alloc.Shortage{What: "controller nodes", Need: req.Controllers, Found: len(up)}
	}
	slices.SortFunc(up, func(a, b int) int {
		return cmp.Or(cmp.Compare(nodes[a].Load, nodes[b].Load), cmp.Compare(nodes[a].ID, nodes[b].ID))
	})
	return alloc.Placement{Disks: fit[:req.VDs], Nodes: up[:req.Controllers]}, nil
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "placement:", err)
		os.Exit(1)
	}
}

// run builds a small cluster in memory and places three disk arrays with
// the pack policy, printing where their VDs went.
func run(ctx context.Context, out io.Writer) error {
	st, err := memstore.New(memstore.DefaultConfig())
	if err != nil {
		return err
	}
	defer st.Close()
	api, err := vda.New(vda.Config{Store: st, Placer: vda.PolicyPlacer{Policy: pack{}}})
	if err != nil {
		return err
	}
	// Four disk nodes with one 1 GiB malloc disk each, two controller nodes.
	for i := range 4 {
		dn := fmt.Sprintf("10.0.0.%d:9720", 10+i)
		listener := nvmeof.TransportID{TrType: "tcp", TrAddr: fmt.Sprintf("10.0.0.%d", 10+i), TrSvcID: "4420"}
		if _, err := api.CreateDiskNode(ctx, vda.NodeSpec{Name: dn, Listener: listener}); err != nil {
			return err
		}
		if _, err := api.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: dn, Name: "pd0",
			Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 1073741824}}); err != nil {
			return err
		}
	}
	for i := range 2 {
		cn := fmt.Sprintf("10.0.1.%d:9820", 10+i)
		listener := nvmeof.TransportID{TrType: "tcp", TrAddr: fmt.Sprintf("10.0.1.%d", 10+i), TrSvcID: "4430"}
		if _, err := api.CreateControllerNode(ctx, vda.NodeSpec{Name: cn, Listener: listener}); err != nil {
			return err
		}
	}
	for i, size := range []uint64{256 << 20, 128 << 20, 64 << 20} {
		da, err := api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: fmt.Sprintf("da%d", i), CntlrCount: 2,
			SizeBytes: size, PhysicalSizeBytes: size, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s (%d MiB):", da.Name, size>>20)
		for _, vd := range da.VDs {
			fmt.Fprintf(out, " vd%d on %s/%s", vd.Idx, vd.DNName, vd.PDName)
		}
		p, _ := da.Primary()
		fmt.Fprintf(out, ", primary on %s\n", p.CNName)
	}
	// The fullest disks took every VD: two disks are still empty.
	pds, _, err := api.ListPhysicalDisks(ctx, "", vda.Page{})
	if err != nil {
		return err
	}
	empty := 0
	for _, pd := range pds {
		if pd.VDCount == 0 {
			empty++
		}
	}
	fmt.Fprintf(out, "%d of %d disks are still empty\n", empty, len(pds))
	return nil
}
