package vda_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
)

// locCluster has 8 DNs with a PD each in rack0..rack3 (dn i in rack i%4)
// and 6 CNs in zone0..zone2 (cn i in zone i%3).
func locCluster(t *testing.T, c *vda.Cluster) {
	ctx := context.Background()
	for i := range 8 {
		name := fmt.Sprintf("dn%03d:9720", i)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: name, Listener: listener(nodeIP(0, i), "4420"), Location: fmt.Sprintf("rack%d", i%4)})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: name, Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 1 << 30}})
		require.NoError(t, err)
	}
	for i := range 6 {
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("cn%03d:9820", i), Listener: listener(nodeIP(1, i), "4430"),
			Location: fmt.Sprintf("zone%d", i%3)})
		require.NoError(t, err)
	}
}

// dnRack and cnZone invert locCluster's naming.
func dnRack(dn string) string {
	var i int
	_, _ = fmt.Sscanf(dn, "dn%03d:9720", &i)
	return fmt.Sprintf("rack%d", i%4)
}

func cnZone(cn string) string {
	var i int
	_, _ = fmt.Sscanf(cn, "cn%03d:9820", &i)
	return fmt.Sprintf("zone%d", i%3)
}

// recordingPlacer is a Placer that is not alloc.Default's (so it is shown
// every candidate, allCandidates) and records what it was shown.
type recordingPlacer struct{ seen *vda.Candidates }

func (r recordingPlacer) Place(req vda.PlacementRequest, c vda.Candidates) (vda.Placement, error) {
	*r.seen = c
	return vda.DefaultPlacer{}.Place(req, c)
}

// CNLocations and DNLocations keep a DA's controllers and VDs in the
// locations asked, with the sampling DefaultPlacer and with a Placer shown
// every candidate; the constraint is stored, shown, part of the
// idempotency check, and named when nothing satisfies it.
func TestCreateDiskArrayLocations(t *testing.T) {
	ctx := context.Background()
	var seen vda.Candidates
	for _, tc := range []struct {
		name   string
		placer vda.Placer
	}{{"default", nil}, {"all-candidates", recordingPlacer{&seen}}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := vda.DefaultConfig(newStore(t))
			cfg.Placer = tc.placer
			c, err := vda.New(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			locCluster(t, c)
			for i := range 6 {
				spec := vda.DiskArraySpec{Name: fmt.Sprintf("da%d", i), CntlrCount: 2, SizeBytes: 16 << 20,
					Conf:        vda.DAConf{StripeCount: 2, StripeSizeKB: 64},
					CNLocations: []string{"zone2", "zone1"}, DNLocations: []string{"rack3"}}
				da, err := c.CreateDiskArray(ctx, spec)
				require.NoError(t, err)
				require.Equal(t, []string{"zone1", "zone2"}, da.CNLocations, "stored sorted")
				require.Equal(t, []string{"rack3"}, da.DNLocations)
				if tc.placer != nil {
					require.NotEmpty(t, seen.PDs)
					for _, pd := range seen.PDs {
						require.Equal(t, "rack3", dnRack(pd.DNName), "the Placer is shown only PDs of the locations asked")
					}
					for name, dn := range seen.DNs {
						require.Equal(t, "rack3", dn.Location, name)
					}
					for _, cn := range seen.CNs {
						require.Contains(t, []string{"zone1", "zone2"}, cn.Location)
					}
				}
				for _, vd := range da.VDs {
					require.Equal(t, "rack3", dnRack(vd.DNName), "VD %d on %s", vd.Idx, vd.DNName)
				}
				for _, cn := range da.Cntlrs {
					require.Contains(t, []string{"zone1", "zone2"}, cnZone(cn.CNName), "controller on %s", cn.CNName)
				}
				got, err := c.GetDiskArray(ctx, da.Name)
				require.NoError(t, err)
				require.Equal(t, da.CNLocations, got.CNLocations)
				require.Equal(t, da.DNLocations, got.DNLocations)
				// The same constraint in another order is the same request.
				spec.CNLocations = []string{"zone1", "zone2"}
				again, err := c.CreateDiskArray(ctx, spec)
				require.NoError(t, err)
				require.Equal(t, da.ID, again.ID)
				spec.DNLocations = nil
				_, err = c.CreateDiskArray(ctx, spec)
				require.ErrorIs(t, err, vda.ErrAlreadyExists)
				require.ErrorContains(t, err, "dn_locations")
			}
			// Three VDs need three DNs: rack0 has two.
			_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "wide", CntlrCount: 1, SizeBytes: 16 << 20,
				Conf: vda.DAConf{StripeCount: 3, StripeSizeKB: 64}, DNLocations: []string{"rack0"}})
			require.ErrorIs(t, err, vda.ErrResourceExhausted)
			require.ErrorContains(t, err, `dn_locations ["rack0"]`)
			_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "nowhere", CntlrCount: 1, SizeBytes: 16 << 20,
				Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}, CNLocations: []string{"zone9"}})
			require.ErrorIs(t, err, vda.ErrResourceExhausted)
			require.ErrorContains(t, err, `cn_locations ["zone9"]`)
			// Unconstrained, the same request fits.
			_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "wide", CntlrCount: 1, SizeBytes: 16 << 20,
				Conf: vda.DAConf{StripeCount: 3, StripeSizeKB: 64}})
			require.NoError(t, err)
		})
	}
}

func TestDiskArrayLocationsValidated(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	many := make([]string, vda.MaxPlacementLocations+1)
	for i := range many {
		many[i] = fmt.Sprintf("loc%d", i)
	}
	for name, locs := range map[string][]string{
		"too many":  many,
		"duplicate": {"a", "b", "a"},
		"empty":     {""},
		"control":   {"rack\n1"},
		"too long":  {strings.Repeat("x", vda.MaxLocationBytes+1)},
	} {
		for _, cn := range []bool{true, false} {
			spec := vda.DiskArraySpec{Name: "da0", CntlrCount: 1, SizeBytes: 16 << 20, Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}}
			if cn {
				spec.CNLocations = locs
			} else {
				spec.DNLocations = locs
			}
			_, err := c.CreateDiskArray(ctx, spec)
			require.ErrorIs(t, err, vda.ErrInvalidArgument, "%s (cn %v)", name, cn)
		}
	}
	ok := vda.DiskArraySpec{Name: "da0", CntlrCount: 1, SizeBytes: 16 << 20, Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64},
		CNLocations: many[:vda.MaxPlacementLocations]}
	_, err := c.CreateDiskArray(ctx, ok)
	require.ErrorIs(t, err, vda.ErrResourceExhausted, "16 locations are valid; no node is in any")
}
