package vda_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
)

func TestValidateNewName(t *testing.T) {
	for _, tc := range []struct {
		kind nvmeof.ResourceKind
		name string
		err  string // "" = valid
	}{
		{nvmeof.ResourceDA, "da0", ""},
		{nvmeof.ResourceDA, "Da_0.x-y", ""},
		{nvmeof.ResourceDA, ".", "start with a letter or a digit"},
		{nvmeof.ResourceDA, "..", "start with a letter or a digit"},
		{nvmeof.ResourceExporter, ".hidden", "start with a letter or a digit"},
		{nvmeof.ResourcePD, "_x", "start with a letter or a digit"},
		{nvmeof.ResourcePD, "a:b", "not in [A-Za-z0-9._-]"},
		{nvmeof.ResourceDN, "dn0", ""},
		{nvmeof.ResourceDN, "192.168.0.14:9720", ""},
		{nvmeof.ResourceDN, "dn1.example.com:9720", ""},
		{nvmeof.ResourceCN, "[fd00::16]:9820", ""},
		{nvmeof.ResourceDN, ".", "start with a letter or a digit"},
		{nvmeof.ResourceDN, "..", "start with a letter or a digit"},
		{nvmeof.ResourceDN, "a:b", `port "b"`},
		{nvmeof.ResourceDN, "a:", `port ""`},
		{nvmeof.ResourceDN, "127.0.43.14:09720", "write 127.0.43.14:9720"},
		{nvmeof.ResourceDN, "127.0.43.14:+9720", `character '+'`},
		{nvmeof.ResourceDN, "127.0.43.14:65536", `port "65536"`},
		{nvmeof.ResourceDN, "127.0.043.14:9720", "IPv4"},
		{nvmeof.ResourceDN, "0.0.0.0:9720", "unicast"},
		{nvmeof.ResourceCN, "[::ffff:10.0.0.1]:9820", "write 10.0.0.1:9820"},
		{nvmeof.ResourceCN, "[FD00::16]:9820", "write [fd00::16]:9820"},
		{nvmeof.ResourceCN, "Cn.Example:9820", "write cn.example:9820"},
		{nvmeof.ResourceCN, "cn.example.:9820", "write cn.example:9820"},
		{nvmeof.ResourceCN, "cn..example:9820", "DNS label"},
		{nvmeof.ResourceCN, "-cn.example:9820", "starts or ends with"},
		{nvmeof.ResourceCN, "cn-.example:9820", "DNS label"},
		{nvmeof.ResourceCN, "a:b:c", "not a host:port"},
	} {
		err := vda.ValidateNewName(tc.kind, tc.name)
		if tc.err == "" {
			require.NoError(t, err, "%s %q", tc.kind, tc.name)
			continue
		}
		require.ErrorIs(t, err, vda.ErrInvalidArgument, "%s %q", tc.kind, tc.name)
		require.ErrorContains(t, err, tc.err, "%s %q", tc.kind, tc.name)
	}
}

func FuzzCanonicalNodeAddr(f *testing.F) {
	for _, s := range []string{"192.168.0.14:9720", "[::1]:1", "h.example:65535", "127.0.43.14:09720", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := vda.CanonicalNodeAddr(s)
		if err != nil {
			return
		}
		again, err := vda.CanonicalNodeAddr(c)
		require.NoError(t, err, "canonical form %q of %q", c, s)
		require.Equal(t, c, again, "canonicalisation is idempotent")
		require.NoError(t, vda.ValidateNewName(nvmeof.ResourceDN, c), "a canonical address is a valid name")
	})
}

// A malloc PD beyond the cluster's bound is refused with the limit in the
// message; the bound is configurable.
func TestMallocPDBound(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	c := newCluster(t, st)
	_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn0", Listener: listener("10.0.0.1", "4420")})
	require.NoError(t, err)
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "big", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 1099511627776}})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
	require.ErrorContains(t, err, "limit of 68719476736 bytes")
	_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "max", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 68719476736}})
	require.NoError(t, err)

	small, err := vda.New(vda.Config{Store: st, MaxMallocPDBytes: 256 << 20})
	require.NoError(t, err)
	_, err = small.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: "dn0", Name: "p", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 536870912}})
	require.ErrorContains(t, err, "limit of 268435456 bytes")
	_, err = vda.New(vda.Config{Store: st, MaxMallocPDBytes: vda.MaxPDBytes + 1})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
}

// Page tokens are positions in their own list; anything else is refused.
func TestPageTokens(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	for i, dn := range []string{"dn0", "dn1", "dn2"} {
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: dn, Listener: listener(nodeIP(0, i), "4420")})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: dn, Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 134217728}})
		require.NoError(t, err)
	}
	pds, next, err := c.ListPhysicalDisks(ctx, "", vda.Page{Limit: 2})
	require.NoError(t, err)
	require.Len(t, pds, 2)
	require.Equal(t, "dn1/pd0", next)
	pds, next, err = c.ListPhysicalDisks(ctx, "", vda.Page{Limit: 2, Token: next})
	require.NoError(t, err)
	require.Len(t, pds, 1)
	require.Empty(t, next)
	for _, tok := range []string{"garbage", "dn1/pd0/x", "dn1/", "/pd0", "dn1/p d", "\x00"} {
		_, _, err := c.ListPhysicalDisks(ctx, "", vda.Page{Token: tok})
		require.ErrorIs(t, err, vda.ErrInvalidArgument, "%q", tok)
	}
	_, _, err = c.ListDiskNodes(ctx, vda.Page{Token: "dn1/pd0"})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
	dns, _, err := c.ListDiskNodes(ctx, vda.Page{Token: "dn0"})
	require.NoError(t, err)
	require.Len(t, dns, 2)
	_, _, err = c.ListPhysicalDisks(ctx, "dn9", vda.Page{})
	require.ErrorIs(t, err, vda.ErrNotFound)
	_, _, err = c.ListExporters(ctx, "da9", vda.Page{})
	require.ErrorIs(t, err, vda.ErrNotFound)
}

// Deleting a node frees its listener for another; modifying it moves the
// claim.
func TestListenerClaims(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	a, b := listener("10.0.0.1", "4420"), listener("10.0.0.2", "4420")
	_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn0", Listener: a})
	require.NoError(t, err)
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Listener: a})
	require.ErrorIs(t, err, vda.ErrAlreadyExists)
	require.ErrorContains(t, err, `is disk node "dn0"'s`)
	_, err = c.ModifyDiskNode(ctx, "dn0", vda.NodeUpdate{Listener: &b})
	require.NoError(t, err)
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn0", Listener: a})
	require.NoError(t, err, "the old listener was released")
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn1", Listener: b})
	require.ErrorContains(t, err, `is disk node "dn0"'s`)
	require.NoError(t, c.DeleteDiskNode(ctx, "dn0"))
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn1", Listener: b})
	require.NoError(t, err, "freed by the delete")
}
