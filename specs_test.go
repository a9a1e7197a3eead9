package vda_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
)

// The typed specs are validated as completely as the CLI's JSON: bad
// values are ErrInvalidArgument, and what is accepted is stored in the
// one canonical form (so that two spellings of one listener or one device
// cannot both be registered).
func TestTypedSpecsValidated(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))

	for name, l := range map[string]nvmeof.TransportID{
		"missing":     {},
		"trtype":      {TrType: "fc", TrAddr: "10.0.0.1", TrSvcID: "4420"},
		"adrfam":      {TrType: "tcp", AdrFam: "ipv6", TrAddr: "10.0.0.1", TrSvcID: "4420"},
		"traddr":      {TrType: "tcp", TrAddr: "host.example", TrSvcID: "4420"},
		"unspecified": {TrType: "tcp", TrAddr: "0.0.0.0", TrSvcID: "4420"},
		"port":        {TrType: "tcp", TrAddr: "10.0.0.1", TrSvcID: "04420"},
	} {
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn0", Listener: l})
		require.ErrorIs(t, err, vda.ErrInvalidArgument, name)
		require.ErrorContains(t, err, "listener_conf", name)
		_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Listener: l})
		require.ErrorIs(t, err, vda.ErrInvalidArgument, name)
	}

	// Any case, an inferred family and a non-canonical IPv6 address are
	// stored normalised; the same create again is idempotent.
	spec := vda.NodeSpec{Name: "dn0", Listener: nvmeof.TransportID{TrType: "TCP", TrAddr: "fd00:0:0::14", TrSvcID: "4420"}}
	dn, err := c.CreateDiskNode(ctx, spec)
	require.NoError(t, err)
	want := nvmeof.TransportID{TrType: "tcp", AdrFam: "ipv6", TrAddr: "fd00::14", TrSvcID: "4420"}
	require.Equal(t, want, dn.Listener)
	_, err = c.CreateDiskNode(ctx, spec)
	require.NoError(t, err)
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Listener: want})
	require.ErrorIs(t, err, vda.ErrAlreadyExists, "one listener in two spellings")

	bad := nvmeof.TransportID{TrType: "tcp", TrAddr: "10.0.0.1"}
	_, err = c.ModifyDiskNode(ctx, "dn0", vda.NodeUpdate{Listener: &bad})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
	got, err := c.GetDiskNode(ctx, "dn0")
	require.NoError(t, err)
	require.Equal(t, want, got.Listener, "a refused modify changes nothing")

	for name, conf := range map[string]vda.PDConf{
		"missing":        {},
		"type":           {Type: "raid"},
		"malloc size":    {Type: vda.PDMalloc, SizeBytes: 4095},
		"malloc extra":   {Type: vda.PDMalloc, SizeBytes: 128 << 20, Filename: "/dev/sdb"},
		"aio relative":   {Type: vda.PDAio, Filename: "dev/sdb"},
		"aio size":       {Type: vda.PDAio, Filename: "/dev/sdb", SizeBytes: 1 << 20},
		"nvme not a PCI": {Type: vda.PDNVMe, TrAddr: "10.0.0.1"},
	} {
		_, err := c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "pd0", Conf: conf})
		require.ErrorIs(t, err, vda.ErrInvalidArgument, name)
		require.ErrorContains(t, err, "pd_conf", name)
	}
	pd, err := c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "pd0",
		Conf: vda.PDConf{Type: vda.PDNVMe, TrAddr: "01:00.0"}})
	require.NoError(t, err)
	require.Equal(t, "0000:01:00.0", pd.Conf.TrAddr)

	// The parsers read the CLI's JSON into the same values.
	l, err := vda.ParseListenerConf(`{"trtype":"TCP","traddr":"fd00:0:0::14","trsvcid":"4420"}`)
	require.NoError(t, err)
	require.Equal(t, want, l)
	_, err = vda.ParseListenerConf(`{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":"4420","extra":"x"}`)
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
	pc, err := vda.ParsePDConf(`{"type":"nvme","traddr":"01:00.0"}`)
	require.NoError(t, err)
	require.Equal(t, pd.Conf, pc)
	_, err = vda.ParsePDConf(`{"type":"malloc","size":134217728,"Size":1}`)
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
}
