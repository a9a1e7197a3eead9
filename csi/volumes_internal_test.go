package csi

import (
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/require"
)

func req(requisite, preferred []string) *csipb.TopologyRequirement {
	r := &csipb.TopologyRequirement{}
	for _, l := range requisite {
		r.Requisite = append(r.Requisite, &csipb.Topology{Segments: map[string]string{TopologyKey: l}})
	}
	for _, l := range preferred {
		r.Preferred = append(r.Preferred, &csipb.Topology{Segments: map[string]string{TopologyKey: l}})
	}
	return r
}

// Volume and snapshot IDs: the first version's DA IDs stay valid, clone
// volume and snapshot IDs round-trip, anything else is refused.
func TestIDs(t *testing.T) {
	da, cl := VolumeName("a"), VolumeName("b")
	v, ok := parseVolumeID(da)
	require.True(t, ok)
	require.Equal(t, volRef{da: da}, v)
	require.Equal(t, da, v.exp())
	v, ok = parseVolumeID(da + "." + cl)
	require.True(t, ok)
	require.Equal(t, volRef{da: da, clone: cl}, v)
	require.Equal(t, da+"."+cl, v.id())
	require.Equal(t, cl, v.exp())
	require.Equal(t, "clone-"+cl[len("csi-"):], v.hiddenSnap())
	s, ok := parseSnapshotID(da + "." + SnapshotName("s"))
	require.True(t, ok)
	require.Equal(t, snapRef{da: da, snap: SnapshotName("s")}, s)
	for _, bad := range []string{"", "csi-", da + ".", da + "." + SnapshotName("s"), da + "." + cl + "." + cl, "csi-" + "ABCDEF0123456789abcdef0123456789",
		da[:len(da)-1], da + "0", "x" + da[1:], da + "/" + cl} {
		_, ok := parseVolumeID(bad)
		require.False(t, ok, "volume %q", bad)
	}
	for _, bad := range []string{"", da, da + "." + cl, da + ".clone-" + cl[4:], "reallyfakesnapshotid", da + "." + SnapshotName("s") + "x"} {
		_, ok := parseSnapshotID(bad)
		require.False(t, ok, "snapshot %q", bad)
	}
}

func TestLocationChoices(t *testing.T) {
	c, err := locationChoices(nil)
	require.NoError(t, err)
	require.Equal(t, [][]string{nil}, c)
	c, err = locationChoices(req([]string{"a", "b"}, []string{"b"}))
	require.NoError(t, err)
	require.Equal(t, [][]string{{"b"}, {"a", "b"}}, c)
	c, err = locationChoices(req([]string{"a"}, []string{"a"}))
	require.NoError(t, err)
	require.Equal(t, [][]string{{"a"}}, c)
	c, err = locationChoices(req(nil, []string{"a"}))
	require.NoError(t, err)
	require.Equal(t, [][]string{{"a"}, nil}, c, "no requisite: anywhere after the preferred")
	c, err = locationChoices(req([]string{"a"}, []string{"z"}))
	require.NoError(t, err)
	require.Equal(t, [][]string{{"a"}}, c, "a preferred segment outside requisite is ignored")
	_, err = locationChoices(req([]string{"bad value"}, nil))
	require.Error(t, err)
}
