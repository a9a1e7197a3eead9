package nvmeof

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	idA = "0123456789abcdef0123456789abcdef"
	idB = "fedcba9876543210fedcba9876543210"
)

// nameFunc is one of the package's ID-based name functions, with the Name
// ParseName must recover from its output and the namespace it lives in.
type nameFunc struct {
	fn    string
	make  func(id string) string
	kind  Kind
	nsid  uint32
	sp    space
	epoch uint64
}

var nameFuncs = []nameFunc{
	{"PDBdevName", PDBdevName, KindPDBdev, 0, spaceBdev, 0},
	{"PDControllerName", PDControllerName, KindPDController, 0, spaceController, 0},
	{"PD NVMe bdev", func(id string) string { return NVMeBdevName(PDControllerName(id), 1) }, KindPDController, 1, spaceBdev, 0},
	{"PDLvstoreName", PDLvstoreName, KindPDLvstore, 0, spaceLvstore, 0},
	{"VDLvolName", VDLvolName, KindVDLvol, 0, spaceLvol, 0},
	{"VDNQN", func(id string) string { return string(VDNQN(id)) }, KindVDNQN, 0, spaceNQN, 0},
	{"HostNQN", func(id string) string { return string(HostNQN(id)) }, KindHostNQN, 0, spaceNQN, 0},
	{"VDControllerName", VDControllerName, KindVDController, 0, spaceController, 0},
	{"VDBdevName", VDBdevName, KindVDController, 1, spaceBdev, 0},
	{"RaidName", RaidName, KindRaid, 0, spaceBdev, 0},
	{"DALvstoreName", DALvstoreName, KindDALvstore, 0, spaceLvstore, 0},
	{"DALvolName", DALvolName, KindDALvol, 0, spaceLvol, 0},
	{"SnapLvolName", SnapLvolName, KindSnapLvol, 0, spaceLvol, 0},
	{"CloneLvolName", CloneLvolName, KindCloneLvol, 0, spaceLvol, 0},
	{"ExpControllerName", ExpControllerName, KindExpController, 0, spaceController, 0},
	{"ExpBdevName", ExpBdevName, KindExpController, 1, spaceBdev, 0},
	{"PrimaryHostNQN", func(id string) string { return string(PrimaryHostNQN(id, 7)) }, KindPrimaryHostNQN, 0, spaceNQN, 7},
	{"PrimaryHostNQN epoch 0", func(id string) string { return string(PrimaryHostNQN(id, 0)) }, KindPrimaryHostNQN, 0, spaceNQN, 0},
	{"PrimaryHostNQN max epoch", func(id string) string { return string(PrimaryHostNQN(id, 1<<64-1)) }, KindPrimaryHostNQN, 0, spaceNQN, 1<<64 - 1},
}

func TestNewIDAndValidateID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		require.NoError(t, ValidateID(id))
		require.False(t, seen[id], "NewID repeated %s", id)
		seen[id] = true
	}
	for _, bad := range []string{"", idA[:31], idA + "0", strings.ToUpper(idA), idA[:31] + "g", idA[:31] + "-",
		"0123456789abcdef0123456789abcde\u00e9"} {
		err := ValidateID(bad)
		assert.ErrorIs(t, err, ErrInvalidID, "%q", bad)
	}
}

func TestNameGolden(t *testing.T) {
	want := map[string]string{
		"PDBdevName":               "vda-pd-" + idA,
		"PDControllerName":         "vda-pdnvme-" + idA,
		"PD NVMe bdev":             "vda-pdnvme-" + idA + "n1",
		"PDLvstoreName":            "vda-pdlvs-" + idA,
		"VDLvolName":               "vda-vd-" + idA,
		"VDNQN":                    "nqn.2016-06.io.spdk:vda-vd-" + idA,
		"HostNQN":                  "nqn.2016-06.io.spdk:vda-cntlr-" + idA,
		"VDControllerName":         "vda-vdnvme-" + idA,
		"VDBdevName":               "vda-vdnvme-" + idA + "n1",
		"RaidName":                 "vda-raid-" + idA,
		"DALvstoreName":            "vda-dalvs-" + idA,
		"DALvolName":               "vda-da-" + idA,
		"SnapLvolName":             "vda-snap-" + idA,
		"CloneLvolName":            "vda-clone-" + idA,
		"ExpControllerName":        "vda-expnvme-" + idA,
		"ExpBdevName":              "vda-expnvme-" + idA + "n1",
		"PrimaryHostNQN":           "nqn.2016-06.io.spdk:vda-primary-" + idA + "-e7",
		"PrimaryHostNQN epoch 0":   "nqn.2016-06.io.spdk:vda-primary-" + idA + "-e0",
		"PrimaryHostNQN max epoch": "nqn.2016-06.io.spdk:vda-primary-" + idA + "-e18446744073709551615",
	}
	require.Len(t, want, len(nameFuncs))
	for _, f := range nameFuncs {
		assert.Equal(t, want[f.fn], f.make(idA), f.fn)
	}
	assert.Equal(t, "vda-pdlvs-"+idA+"/vda-vd-"+idB, LvolAlias(PDLvstoreName(idA), VDLvolName(idB)))
}

func TestNamesParseBackAndOwnership(t *testing.T) {
	owned := map[space]func(string) bool{
		spaceBdev:       IsOwnedBdev,
		spaceController: IsOwnedController,
		spaceLvstore:    IsOwnedLvstore,
		spaceLvol:       IsOwnedLvol,
		spaceNQN:        func(s string) bool { return IsOwnedNQN(NQN(s)) },
	}
	for _, f := range nameFuncs {
		s := f.make(idB)
		n, ok := ParseName(s)
		require.True(t, ok, "%s: %q", f.fn, s)
		assert.Equal(t, Name{Kind: f.kind, ID: idB, NSID: f.nsid, Epoch: f.epoch}, n, f.fn)
		assert.Equal(t, s, n.String(), f.fn)
		for sp, isOwned := range owned {
			assert.Equal(t, sp == f.sp, isOwned(s), "%s %q in space %d", f.fn, s, sp)
		}
		if f.sp == spaceNQN {
			_, err := ParseNQN(s)
			assert.NoError(t, err, f.fn)
		}
	}
}

func TestSPDKLengthLimits(t *testing.T) {
	id := NewID()
	for _, s := range []string{PDLvstoreName(id), DALvstoreName(id)} {
		assert.LessOrEqual(t, len(s), MaxLvstoreNameLen, s)
	}
	for _, s := range []string{VDLvolName(id), DALvolName(id)} {
		assert.LessOrEqual(t, len(s), MaxLvolNameLen, s)
	}
	for _, f := range nameFuncs {
		s := f.make(id)
		limit := MaxLvstoreNameLen // object names: the tightest SPDK limit
		if f.sp == spaceNQN {
			limit = MaxNQNLen
		}
		assert.LessOrEqual(t, len(s), limit, "%s %q is kept short", f.fn, s)
		assert.NotContains(t, s, "/", "a '/' would make lvol aliases ambiguous")
	}
}

func TestOwnedRejectsForeignNames(t *testing.T) {
	for _, s := range []string{
		"", "Malloc0", "lvs0/lv0", "vda-", "vda-pd", "vda-pd-", "vda-pd-" + idA[:31],
		"vda-pd-" + strings.ToUpper(idA), "vda-pd-" + idA + "n1", "vda-xx-" + idA,
		"vda-vdnvme-" + idA + "n0", "vda-vdnvme-" + idA + "n01", "vda-vdnvme-" + idA + "n",
		"vda-vdnvme-" + idA + "n4294967296", "vda-vdnvme-" + idA + "x1",
		"VDA-pd-" + idA, "vda-exp-da0-exp0", "nqn.2016-06.io.spdk:host0",
		"nqn.2016-06.io.spdk:vda-pd-" + idA, "nqn.2016-06.io.spdk:vda-vd-" + idA + "n1",
		"vda-pdlvs-" + idA + "/Malloc0", "lvs/vda-vd-" + idA, "vda-pd-" + idA + "/vda-vd-" + idA,
		"vda-pdlvs-" + idA + "/vda-pdlvs-" + idA, "vda-pdlvs-" + idA + "/vda-da-" + idA,
		"vda-dalvs-" + idA + "/vda-vd-" + idA, "vda-pdlvs-" + idA + "/vda-vd-" + idA + "/x",
		"nqn.2016-06.io.spdk:vda-primary-" + idA, "nqn.2016-06.io.spdk:vda-primary-" + idA + "-e",
		"nqn.2016-06.io.spdk:vda-primary-" + idA + "-e01", "nqn.2016-06.io.spdk:vda-primary-" + idA + "-e-1",
		"nqn.2016-06.io.spdk:vda-primary-" + idA + "-e18446744073709551616", "nqn.2016-06.io.spdk:vda-primary-" + idA[:31],
		"nqn.2016-06.io.spdk:vda-primary-" + idA + "e7", "nqn.2016-06.io.spdk:vda-primary-" + idA + "-x7",
		"nqn.2016-06.io.spdk:vda-cntlr-" + idA + "-e7", "vda-primary-" + idA + "-e7",
	} {
		assert.False(t, IsOwnedBdev(s), "bdev %q", s)
		assert.False(t, IsOwnedNQN(NQN(s)), "nqn %q", s)
		if n, ok := ParseName(s); ok {
			assert.Equal(t, s, n.String(), "a parsed name renders back exactly")
		}
	}
	assert.True(t, IsOwnedBdev("vda-vdnvme-"+idA+"n4294967295"))
	assert.True(t, IsOwnedBdev(LvolAlias(PDLvstoreName(idA), VDLvolName(idB))))
	assert.True(t, IsOwnedBdev(LvolAlias(DALvstoreName(idA), DALvolName(idA))))
	assert.True(t, IsOwnedBdev(LvolAlias(DALvstoreName(idA), SnapLvolName(idB))))
	assert.True(t, IsOwnedBdev(LvolAlias(DALvstoreName(idA), CloneLvolName(idB))))
	assert.False(t, IsOwnedBdev(LvolAlias(PDLvstoreName(idA), SnapLvolName(idB))))
	assert.Equal(t, "", Name{}.String())
	assert.Equal(t, "Kind(99)", Kind(99).String())
	assert.Equal(t, "VD lvol", KindVDLvol.String())
}

// TestNamesInjective checks that no two inputs among all name functions,
// over a set of IDs and user names, share an output.
func TestNamesInjective(t *testing.T) {
	ids := []string{idA, idB, strings.Repeat("0", 32), strings.Repeat("f", 32), NewID()}
	users := []string{"a", "b", "c", "a-b", "b-c", "a--b", "da0", "exp0", "a.b", "A", "x_y", "1"}
	seen := map[string]string{}
	add := func(out, in string) {
		t.Helper()
		prev, dup := seen[out]
		require.False(t, dup, "%q made by both %s and %s", out, prev, in)
		seen[out] = in
	}
	for _, id := range ids {
		for _, f := range nameFuncs {
			add(f.make(id), f.fn+"("+id+")")
		}
	}
	for _, da := range users {
		for _, exp := range users {
			n, err := ExpNQN(da, exp)
			require.NoError(t, err)
			add(string(n), fmt.Sprintf("ExpNQN(%q, %q)", da, exp))
		}
	}
	assert.Len(t, seen, len(ids)*len(nameFuncs)+len(users)*len(users))
}
