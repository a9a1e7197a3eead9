package vda_test

import (
	"context"
	"fmt"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store/memstore"
)

// Embedders use the Cluster API directly, without gRPC.
func ExampleCluster_CreateDiskArray() {
	ctx := context.Background()
	st, _ := memstore.New(memstore.DefaultConfig())
	defer st.Close()
	c, _ := vda.New(vda.DefaultConfig(st))

	for _, ip := range []string{"192.168.0.14", "192.168.0.15"} {
		dn := ip + ":9720"
		_, _ = c.CreateDiskNode(ctx, vda.NodeSpec{Name: dn,
			ListenerConf: `{"trtype":"tcp","traddr":"` + ip + `","adrfam":"ipv4","trsvcid":"4420"}`})
		_, _ = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: dn, Name: "pd0", Conf: `{"type":"malloc","size":134217728}`})
	}
	_, _ = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "192.168.0.16:9820",
		ListenerConf: `{"trtype":"tcp","traddr":"192.168.0.16","adrfam":"ipv4","trsvcid":"4430"}`})

	da, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 1, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(da.SizeBytes, da.VDSizeBytes, da.ClusterBytes, da.Cntlrs[0].CNName)

	_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "big", CntlrCount: 1, SizeBytes: 1 << 30,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	fmt.Println(err)
	// Output:
	// 33554432 20971520 4194304 192.168.0.16:9820
	// vda: resource exhausted: need 2 online physical disks with 541065216 bytes free, found 0
}

// Layout is the sizing agents reuse: an exported namespace of exactly
// --da-size bytes on an lvstore on a raid0 of VDs.
func ExampleLayout() {
	l, _ := vda.Layout(33554432, 33554432, 2, 64)
	fmt.Printf("cluster %d, data %d + metadata %d clusters, raid %d, VD %d\n",
		l.ClusterBytes, l.DataClusters, l.MetadataClusters, l.RaidBytes, l.VDSizeBytes)
	// Output: cluster 4194304, data 8 + metadata 1 clusters, raid 41943040, VD 20971520
}
