package vda_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
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
			Listener: nvmeof.TransportID{TrType: "tcp", TrAddr: ip, TrSvcID: "4420"}})
		_, _ = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: dn, Name: "pd0",
			Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 128 << 20}})
	}
	_, _ = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "192.168.0.16:9820",
		Listener: nvmeof.TransportID{TrType: "tcp", TrAddr: "192.168.0.16", TrSvcID: "4430"}})

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

// A CLI or an API gateway parses what users type (the tutorial's --pd-conf
// and --dn-listener-conf JSON) into the typed specs; bad input is
// ErrInvalidArgument with the reason.
func ExampleParsePDConf() {
	conf, err := vda.ParsePDConf(`{"type":"nvme","traddr":"01:00.0"}`)
	fmt.Println(conf.Type, conf.TrAddr, err)
	listener, err := vda.ParseListenerConf(`{"trtype":"tcp","traddr":"192.168.0.14","trsvcid":"4420"}`)
	fmt.Println(listener, listener.AdrFam, err)
	spec := vda.NodeSpec{Name: "192.168.0.14:9720", Listener: listener}
	fmt.Println(spec.Listener.JSON())

	_, err = vda.ParsePDConf(`{"type":"malloc","size":"1G"}`)
	fmt.Println(errors.Is(err, vda.ErrInvalidArgument))
	// Output:
	// nvme 0000:01:00.0 <nil>
	// tcp 192.168.0.14:4420 ipv4 <nil>
	// {"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}
	// true
}

// Layout is the sizing agents reuse: an exported namespace of exactly
// --da-size bytes on an lvstore on a raid0 of VDs.
func ExampleLayout() {
	l, _ := vda.Layout(33554432, 33554432, 2, 64)
	fmt.Printf("cluster %d, data %d + metadata %d clusters, raid %d, VD %d\n",
		l.ClusterBytes, l.DataClusters, l.MetadataClusters, l.RaidBytes, l.VDSizeBytes)
	// Output: cluster 4194304, data 8 + metadata 1 clusters, raid 41943040, VD 20971520
}
