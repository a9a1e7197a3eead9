package vda_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

func newStore(t testing.TB) store.Store {
	s, err := memstore.New(memstore.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newCluster(t testing.TB, s store.Store) *vda.Cluster {
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	return c
}

// nodeIP is the i-th address of a test subnet (no two nodes may share a
// listener).
func nodeIP(subnet, i int) string {
	return fmt.Sprintf("10.%d.%d.%d", subnet, i/250, i%250+1)
}

// listener is the TCP listener ip:port, normalised as nodes store it.
func listener(ip, port string) nvmeof.TransportID {
	return nvmeof.TransportID{TrType: nvmeof.TrTypeTCP, AdrFam: nvmeof.AdrFamIPv4, TrAddr: ip, TrSvcID: port}
}

// tutorialCluster builds seed 003's cluster: two DNs with a 128 MiB malloc
// PD each and two CNs.
func tutorialCluster(t testing.TB, c *vda.Cluster) {
	ctx := context.Background()
	for _, ip := range []string{"192.168.0.14", "192.168.0.15"} {
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: ip + ":9720", Listener: listener(ip, "4420"), Location: ip + ":9720"})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: ip + ":9720", Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 134217728}})
		require.NoError(t, err)
	}
	for _, ip := range []string{"192.168.0.16", "192.168.0.17"} {
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: ip + ":9820", Listener: listener(ip, "4430"), Location: "192.168.0.16:9820"})
		require.NoError(t, err)
	}
}

func TestClusterTutorial(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	tutorialCluster(t, c)
	da, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 33554432,
		PhysicalSizeBytes: 33554432, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	require.Len(t, da.VDs, 2)
	require.NotEqual(t, da.VDs[0].DNName, da.VDs[1].DNName, "VDs spread over DNs")
	require.Equal(t, "192.168.0.16:9820", da.Cntlrs[0].CNName)
	require.Equal(t, "192.168.0.17:9820", da.Cntlrs[1].CNName)
	require.True(t, da.Cntlrs[0].Primary)
	require.Equal(t, da.Cntlrs[0].ID, da.PrimaryCntlrID)
	require.EqualValues(t, 1, da.Epoch)
	require.Len(t, da.ID, 32)

	exp, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)
	got, err := c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, exp.ID, got.ID)
	require.Equal(t, "nqn.2016-06.io.spdk:vda-exp-da0-exp0", got.NQN)
	require.Len(t, got.Ports, 2)
	require.Equal(t, listener("192.168.0.17", "4430"), got.Ports[1].CNListener)

	pd, err := c.GetPhysicalDisk(ctx, "192.168.0.14:9720", "pd0")
	require.NoError(t, err)
	require.Equal(t, da.VDSizeBytes, pd.AllocatedBytes)
	require.Equal(t, 1, pd.VDCount)

	// Deletes in use are refused and change nothing.
	for _, del := range []func() error{
		func() error { return c.DeleteDiskArray(ctx, "da0") },
		func() error { return c.DeletePhysicalDisk(ctx, "192.168.0.14:9720", "pd0") },
		func() error { return c.DeleteDiskNode(ctx, "192.168.0.14:9720") },
		func() error { return c.DeleteControllerNode(ctx, "192.168.0.16:9820") },
	} {
		require.ErrorIs(t, del(), vda.ErrFailedPrecondition)
	}
	_, err = c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)

	// Tear down in order; every counter is released.
	require.NoError(t, c.DeleteExporter(ctx, "da0", "exp0"))
	require.NoError(t, c.DeleteDiskArray(ctx, "da0"))
	pd, err = c.GetPhysicalDisk(ctx, "192.168.0.14:9720", "pd0")
	require.NoError(t, err)
	require.Zero(t, pd.AllocatedBytes)
	require.NoError(t, c.DeleteControllerNode(ctx, "192.168.0.16:9820"))
	require.NoError(t, c.DeletePhysicalDisk(ctx, "192.168.0.14:9720", "pd0"))
	require.NoError(t, c.DeleteDiskNode(ctx, "192.168.0.14:9720"))
	_, err = c.GetDiskNode(ctx, "192.168.0.14:9720")
	require.ErrorIs(t, err, vda.ErrNotFound)
}

func TestClusterCapacity(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	tutorialCluster(t, c)
	// 124 MiB usable per PD; each 32 MiB DA takes 20 MiB per PD: 6 fit.
	n := 0
	for ; ; n++ {
		_, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: fmt.Sprintf("da%d", n), CntlrCount: 2,
			SizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
		if err != nil {
			require.ErrorIs(t, err, vda.ErrResourceExhausted)
			break
		}
	}
	require.Equal(t, 6, n)
	sum, err := c.Summary(ctx)
	require.NoError(t, err)
	require.Equal(t, 6, sum.DACount)
	require.EqualValues(t, 2*124<<20, sum.TotalBytes)
	require.EqualValues(t, 2*4<<20, sum.FreeBytes)

	_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 1,
		SizeBytes: 8 << 20, Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
	require.ErrorIs(t, err, vda.ErrAlreadyExists)
	// Offline PDs are not used.
	require.NoError(t, c.DeleteDiskArray(ctx, "da5"))
	off := true
	_, err = c.ModifyPhysicalDisk(ctx, "192.168.0.14:9720", "pd0", vda.PhysicalDiskUpdate{Offline: &off})
	require.NoError(t, err)
	_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "small", CntlrCount: 1,
		SizeBytes: 8 << 20, Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
	require.NoError(t, err)
	da, err := c.GetDiskArray(ctx, "small")
	require.NoError(t, err)
	require.Equal(t, "192.168.0.15:9720", da.VDs[0].DNName)
	require.EqualValues(t, 16<<20, da.VDSizeBytes)
	require.True(t, errors.Is(c.DeleteDiskArray(ctx, "nope"), vda.ErrNotFound))
}

func TestClusterPaging(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	for i := range 5 {
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("cn%d", i), Listener: listener(nodeIP(1, i), "4430")})
		require.NoError(t, err)
	}
	var names []string
	page := vda.Page{Limit: 2}
	for {
		cns, next, err := c.ListControllerNodes(ctx, page)
		require.NoError(t, err)
		for _, cn := range cns {
			names = append(names, cn.Name)
		}
		if next == "" {
			break
		}
		page.Token = next
	}
	require.Equal(t, []string{"cn0", "cn1", "cn2", "cn3", "cn4"}, names)
	_, _, err := c.ListControllerNodes(ctx, vda.Page{Limit: vda.MaxPageSize + 1})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
}

// An aio or nvme PD has no known size until the monitor reports one.
func TestClusterReportedCapacity(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn0", Listener: listener("10.0.0.1", "4420")})
	require.NoError(t, err)
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "sdb", Conf: vda.PDConf{Type: vda.PDAio, Filename: "/dev/sdb"}})
	require.NoError(t, err)
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "nvme0", Conf: vda.PDConf{Type: vda.PDNVMe, TrAddr: "0000:01:00.0"}})
	require.NoError(t, err)
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Listener: listener("10.0.0.2", "4430")})
	require.NoError(t, err)
	spec := vda.DiskArraySpec{Name: "da0", CntlrCount: 1, SizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}}
	_, err = c.CreateDiskArray(ctx, spec)
	require.ErrorIs(t, err, vda.ErrResourceExhausted)

	// The monitor reports the aio disk's lvstore size.
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(vda.KeyPD("dn0", "sdb")), Value: []byte(`{"health":"healthy","total_bytes":1073741824}`)}}})
	require.NoError(t, err)
	da, err := c.CreateDiskArray(ctx, spec)
	require.NoError(t, err)
	require.Equal(t, "sdb", da.VDs[0].PDName)
}

func TestClusterModify(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	tutorialCluster(t, c)
	desc, loc, off := "rack 7", "room-2", true
	lc := nvmeof.TransportID{TrType: "TCP", TrAddr: "192.168.0.99", TrSvcID: "4421"}
	dn, err := c.ModifyDiskNode(ctx, "192.168.0.14:9720", vda.NodeUpdate{Description: &desc, Location: &loc, Listener: &lc})
	require.NoError(t, err)
	require.Equal(t, listener("192.168.0.99", "4421"), dn.Listener, "stored normalised")
	got, err := c.GetDiskNode(ctx, "192.168.0.14:9720")
	require.NoError(t, err)
	require.Equal(t, "rack 7", got.Description)
	require.Equal(t, "room-2", got.Location)
	require.Equal(t, 1, got.PDCount, "untouched fields are kept")

	_, err = c.ModifyControllerNode(ctx, "192.168.0.17:9820", vda.NodeUpdate{Offline: &off})
	require.NoError(t, err)
	spec := vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}}
	_, err = c.CreateDiskArray(ctx, spec)
	require.ErrorIs(t, err, vda.ErrResourceExhausted, "an offline CN takes no controllers")
	spec.CntlrCount = 1
	_, err = c.CreateDiskArray(ctx, spec)
	require.NoError(t, err)

	da, err := c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{Description: &desc})
	require.NoError(t, err)
	require.Equal(t, "rack 7", da.Description)
	require.Len(t, da.VDs, 2)

	_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)
	host1 := "nqn.2016-06.io.spdk:host1"
	exp, err := c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{InitiatorNQN: &host1})
	require.NoError(t, err)
	require.Equal(t, host1, exp.InitiatorNQN)
	require.Equal(t, "192.168.0.16:9820", exp.Ports[0].CNName)
	exps, _, err := c.ListExporters(ctx, "", vda.Page{})
	require.NoError(t, err)
	require.Len(t, exps, 1)
	require.Equal(t, host1, exps[0].InitiatorNQN)
	_, err = c.ModifyExporter(ctx, "da0", "exp9", vda.ExporterUpdate{InitiatorNQN: &host1})
	require.ErrorIs(t, err, vda.ErrNotFound)
}

// A node's Address, when set, is where its agent listens; its name stays
// its identity. Addresses are canonical host:port, like names that are
// addresses, and can be changed or cleared.
func TestNodeAddress(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	lc := listener("192.168.0.16", "4430")
	cn, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Address: "192.168.0.16:9820", Listener: lc})
	require.NoError(t, err)
	require.Equal(t, "192.168.0.16:9820", cn.Address)
	got, err := c.GetControllerNode(ctx, "cn0")
	require.NoError(t, err)
	require.Equal(t, "192.168.0.16:9820", got.Address, "stored")
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Address: "192.168.0.16:9820", Listener: lc})
	require.NoError(t, err, "the same create again is idempotent")
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Address: "192.168.0.17:9820", Listener: lc})
	require.ErrorIs(t, err, vda.ErrAlreadyExists, "another address is another node")
	require.ErrorContains(t, err, "address")

	for _, bad := range []string{"192.168.0.16", "192.168.0.16:0", "192.168.000.16:9820", "Host.Example:9820",
		"[::ffff:1.2.3.4]:9820", "0.0.0.0:9820", "host:port", "a b:1"} {
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn-bad", Address: bad, Listener: listener("192.168.0.30", "4420")})
		require.ErrorIs(t, err, vda.ErrInvalidArgument, bad)
		_, err = c.ModifyControllerNode(ctx, "cn0", vda.NodeUpdate{Address: &bad})
		require.ErrorIs(t, err, vda.ErrInvalidArgument, bad)
	}
	require.ErrorContains(t, vda.ValidateNodeAddress("Host.Example:9820"), "write host.example:9820")

	moved := "[fd00::16]:9820"
	cn, err = c.ModifyControllerNode(ctx, "cn0", vda.NodeUpdate{Address: &moved})
	require.NoError(t, err)
	require.Equal(t, moved, cn.Address)
	none := ""
	cn, err = c.ModifyControllerNode(ctx, "cn0", vda.NodeUpdate{Address: &none})
	require.NoError(t, err)
	require.Empty(t, cn.Address, "cleared: the agent is reached at the name")

	dn, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: "192.168.0.14:9720", Listener: listener("192.168.0.14", "4420")})
	require.NoError(t, err)
	require.Empty(t, dn.Address, "optional")
}

// TestManyNodes: a node create reads a fixed number of keys, so a cluster
// takes more nodes than one transaction may guard (store.MaxTxnOps); a
// listener another node has is still refused, by DN and CN alike.
func TestManyNodes(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	n := store.MaxTxnOps + 20
	for i := range n {
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("dn%03d", i), Listener: listener(nodeIP(1, i), "4420")})
		require.NoError(t, err, "disk node %d", i)
		_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("cn%03d", i), Listener: listener(nodeIP(2, i), "4430")})
		require.NoError(t, err, "controller node %d", i)
	}
	_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cnx", Listener: listener(nodeIP(1, n-1), "4420")})
	require.ErrorIs(t, err, vda.ErrAlreadyExists)
	require.ErrorContains(t, err, "dn")
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dnx", Listener: listener(nodeIP(2, 0), "4430")})
	require.ErrorIs(t, err, vda.ErrAlreadyExists)
	dns, _, err := c.ListDiskNodes(ctx, vda.Page{Limit: vda.MaxPageSize})
	require.NoError(t, err)
	require.Len(t, dns, min(n, vda.MaxPageSize))
}
