package blockdev

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const mib = 1 << 20

func newStore(t testing.TB, base Device, o LvstoreOptions) *Lvstore {
	t.Helper()
	if o.Name == "" {
		o.Name = "lvs0"
	}
	s, err := CreateLvstore(base, o)
	require.NoError(t, err)
	return s
}

func write(t *testing.T, d Device, p []byte, off int64) {
	t.Helper()
	n, err := d.WriteAt(p, off)
	require.NoError(t, err)
	require.Equal(t, len(p), n)
}

func raid(t testing.TB, stripKB uint32, members ...Device) *Raid0 {
	t.Helper()
	r, err := NewRaid0(members, stripKB)
	require.NoError(t, err)
	return r
}

func TestLvstoreCapacity(t *testing.T) {
	s := newStore(t, NewMemory(512, 128*mib/512), LvstoreOptions{})
	require.Equal(t, uint64(31), s.TotalDataClusters())
	require.Equal(t, uint64(31), s.FreeClusters())
	require.Equal(t, uint64(4*mib), s.ClusterSize())

	r := raid(t, 64, NewMemory(512, 96*mib/512), NewMemory(512, 96*mib/512))
	require.Equal(t, int64(192*mib), SizeBytes(r))
	s = newStore(t, r, LvstoreOptions{})
	require.Equal(t, uint64(47), s.TotalDataClusters())

	// 80 MiB + 1 byte rounds up to 84 MiB, thick takes 21 clusters.
	l, err := s.CreateLvol("v", "", 80*mib+1, false, "")
	require.NoError(t, err)
	require.Equal(t, uint64(84*mib), l.SizeBytes())
	require.Equal(t, uint64(84*mib/512), l.NumBlocks())
	require.Equal(t, uint64(47-21), s.FreeClusters())
	require.NotEmpty(t, l.UUID())

	empty, err := s.CreateLvol("empty", "", 0, false, "")
	require.NoError(t, err)
	require.Zero(t, empty.NumBlocks())
}

func TestLvstoreOptionsValidation(t *testing.T) {
	m := NewMemory(512, 64*mib/512)
	for _, o := range []LvstoreOptions{
		{Name: ""},
		{Name: string(make([]byte, 64))},
		{Name: "x", ClearMethod: "bogus"},
		{Name: "x", ClusterSize: 1000},
		{Name: "x", ClusterSize: 2048},
	} {
		_, err := CreateLvstore(m, o)
		require.ErrorIs(t, err, ErrInvalid, "%+v", o)
	}
	// As SPDK: a base below one cluster gets no metadata page (EINVAL);
	// metadata larger than the base is ENOMEM.
	_, err := CreateLvstore(NewMemory(512, 8), LvstoreOptions{Name: "tiny"})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = CreateLvstore(NewMemory(512, 131072), LvstoreOptions{Name: "x", ClusterSize: 4096})
	require.ErrorIs(t, err, ErrNoMemory)
	_, err = CreateLvstore(nil, LvstoreOptions{Name: "x"})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestLvstoreReloadSameBase(t *testing.T) {
	base := NewMemory(512, 64*mib/512)
	s := newStore(t, base, LvstoreOptions{Name: "store", UUID: "11111111-2222-3333-4444-555555555555", ClusterSize: mib})
	thick, err := s.CreateLvol("thick", "aaaaaaaa-0000-0000-0000-000000000001", 3*mib, false, "")
	require.NoError(t, err)
	thin, err := s.CreateLvol("thin", "", 10*mib, true, ClearNone)
	require.NoError(t, err)
	d1, d2 := pattern(11, 8192), pattern(12, 4096)
	write(t, thick, d1, mib-4096)
	write(t, thin, d2, 7*mib)

	got, err := LoadLvstore(base)
	require.NoError(t, err)
	require.Equal(t, "store", got.Name())
	require.Equal(t, s.UUID(), got.UUID())
	require.Equal(t, s.TotalDataClusters(), got.TotalDataClusters())
	require.Equal(t, s.FreeClusters(), got.FreeClusters())
	require.Len(t, got.Lvols(), 2)
	gthick, ok := got.Lvol("thick")
	require.True(t, ok)
	require.Equal(t, "aaaaaaaa-0000-0000-0000-000000000001", gthick.UUID())
	require.False(t, gthick.Thin())
	require.Equal(t, uint64(3), gthick.AllocatedClusters())
	require.Equal(t, d1, readBack(t, gthick, mib-4096, 8192))
	gthin, ok := got.Lvol(thin.UUID()) // found by uuid too
	require.True(t, ok)
	require.True(t, gthin.Thin())
	require.Equal(t, ClearNone, gthin.ClearMethod())
	require.Equal(t, uint64(1), gthin.AllocatedClusters())
	require.Equal(t, d2, readBack(t, gthin, 7*mib, 4096))
	require.Equal(t, make([]byte, 4096), readBack(t, gthin, 7*mib+4096, 4096), "rest of a thin cluster reads zeros")

	require.NoError(t, got.Destroy())
	_, err = LoadLvstore(base)
	require.ErrorIs(t, err, ErrNoLvstore)
	_, err = gthick.ReadAt(make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestLvstoreLoadsOnlyOnSameRaidLayout(t *testing.T) {
	a, b := NewMemory(512, 32*mib/512), NewMemory(512, 32*mib/512)
	s := newStore(t, raid(t, 64, a, b), LvstoreOptions{Name: "lvs", ClusterSize: mib})
	l, err := s.CreateLvol("vol", "", 20*mib, false, "")
	require.NoError(t, err)
	data := pattern(21, 300*1024)
	write(t, l, data, 5*mib+4096)

	// The same members in the same order with the same strip, on "another node".
	again, err := LoadLvstore(raid(t, 64, a, b))
	require.NoError(t, err)
	require.Equal(t, s.UUID(), again.UUID())
	gl, ok := again.Lvol("vol")
	require.True(t, ok)
	require.Equal(t, l.UUID(), gl.UUID())
	require.Equal(t, l.SizeBytes(), gl.SizeBytes())
	require.Equal(t, data, readBack(t, gl, 5*mib+4096, len(data)))

	for name, r := range map[string]*Raid0{
		"swapped order": raid(t, 64, b, a),
		"larger strip":  raid(t, 128, a, b),
		"smaller strip": raid(t, 32, a, b),
		"one member":    raid(t, 64, a),
	} {
		_, err := LoadLvstore(r)
		require.ErrorIs(t, err, ErrNoLvstore, name)
	}
	_, err = LoadLvstore(b)
	require.ErrorIs(t, err, ErrNoLvstore, "a bare member")
	_, err = LoadLvstore(NewMemory(512, 1024))
	require.ErrorIs(t, err, ErrNoLvstore, "blank")
	_, err = LoadLvstore(NewMemory(512, 2))
	require.ErrorIs(t, err, ErrNoLvstore, "smaller than a unit")
}

func TestLvstoreOnFileSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aio.img")
	f, err := CreateFile(path, 4096, 16*mib)
	require.NoError(t, err)
	s := newStore(t, f, LvstoreOptions{ClusterSize: mib})
	l, err := s.CreateLvol("v", "", 4*mib, true, "")
	require.NoError(t, err)
	data := pattern(31, 64*1024)
	write(t, l, data, 2*mib)
	require.NoError(t, f.Close())

	g, err := OpenFile(path, 4096)
	require.NoError(t, err)
	defer g.Close()
	got, err := LoadLvstore(g)
	require.NoError(t, err)
	gl, ok := got.Lvol("v")
	require.True(t, ok)
	require.Equal(t, data, readBack(t, gl, 2*mib, len(data)))
}

func TestThinAndThickClusters(t *testing.T) {
	s := newStore(t, NewMemory(512, 16*mib/512), LvstoreOptions{ClusterSize: mib})
	require.Equal(t, uint64(15), s.TotalDataClusters())
	thick, err := s.CreateLvol("thick", "", 4*mib, false, "")
	require.NoError(t, err)
	require.Equal(t, uint64(11), s.FreeClusters())
	thin, err := s.CreateLvol("thin", "", 100*mib, true, "") // over-provisioning is allowed
	require.NoError(t, err)
	require.Equal(t, uint64(11), s.FreeClusters())
	require.Zero(t, thin.AllocatedClusters())
	require.Equal(t, make([]byte, 4096), readBack(t, thin, 50*mib, 4096))

	write(t, thin, pattern(1, 4096), 50*mib)
	require.Equal(t, uint64(10), s.FreeClusters())
	write(t, thin, pattern(2, 4096), 50*mib+8192) // same cluster
	require.Equal(t, uint64(10), s.FreeClusters())
	require.Equal(t, uint64(1), thin.AllocatedClusters())

	_, err = s.CreateLvol("big", "", 11*mib, false, "")
	require.ErrorIs(t, err, ErrNoSpace)
	_, err = s.CreateLvol("thick", "", mib, false, "")
	require.ErrorIs(t, err, ErrExists)
	_, err = s.CreateLvol("x", "", mib, false, "bogus")
	require.ErrorIs(t, err, ErrInvalid)

	// Fill the store through the thin lvol until it runs out.
	var werr error
	for i := int64(0); i < 12 && werr == nil; i++ {
		_, werr = thin.WriteAt(make([]byte, 512), i*mib)
	}
	require.ErrorIs(t, werr, ErrNoSpace)
	require.Zero(t, s.FreeClusters())

	require.NoError(t, s.Delete("thick"))
	require.Equal(t, uint64(4), s.FreeClusters())
	require.ErrorIs(t, s.Delete("thick"), ErrNotFound)
	_, err = thick.WriteAt(make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = thin.ReadAt(make([]byte, 512), 100*mib)
	require.ErrorIs(t, err, ErrOutOfRange)
}

func TestClearMethodNoneExposesOldBytes(t *testing.T) {
	s := newStore(t, NewMemory(512, 8*mib/512), LvstoreOptions{ClusterSize: mib})
	a, err := s.CreateLvol("a", "", mib, false, ClearNone)
	require.NoError(t, err)
	secret := pattern(41, 4096)
	write(t, a, secret, 0)
	require.NoError(t, s.Delete("a"))

	b, err := s.CreateLvol("b", "", mib, false, ClearNone)
	require.NoError(t, err)
	require.Equal(t, secret, readBack(t, b, 0, 4096), "clear_method none leaves the old bytes")
	require.NoError(t, s.Delete("b"))

	c, err := s.CreateLvol("c", "", mib, false, ClearUnmap)
	require.NoError(t, err)
	require.Equal(t, make([]byte, 4096), readBack(t, c, 0, 4096), "unmap clears them")
	require.NoError(t, s.Delete("c"))

	d, err := s.CreateLvol("d", "", mib, true, ClearNone)
	require.NoError(t, err)
	write(t, d, pattern(42, 512), 4096)
	require.Equal(t, make([]byte, 4096), readBack(t, d, 0, 4096), "a thin lvol's new cluster is zero-filled")
}

func TestSnapshotAndClone(t *testing.T) {
	base := NewMemory(512, 32*mib/512)
	s := newStore(t, base, LvstoreOptions{ClusterSize: mib})
	v, err := s.CreateLvol("v", "", 4*mib, false, "")
	require.NoError(t, err)
	orig := pattern(51, 4*mib)
	write(t, v, orig, 0)
	free := s.FreeClusters()

	snap, err := s.Snapshot("v", "snap", "")
	require.NoError(t, err)
	require.Equal(t, free, s.FreeClusters(), "a snapshot takes the clusters over")
	require.True(t, snap.IsSnapshot())
	require.True(t, v.IsClone())
	require.True(t, v.Thin())
	require.Equal(t, "snap", v.Parent())
	require.Equal(t, []string{"v"}, snap.Clones())
	require.Zero(t, v.AllocatedClusters())

	upd := pattern(52, 8192)
	write(t, v, upd, mib+4096)
	require.Equal(t, free-1, s.FreeClusters(), "copy on write takes one cluster")
	want := append([]byte(nil), orig...)
	copy(want[mib+4096:], upd)
	require.Equal(t, want, readBack(t, v, 0, 4*mib))
	require.Equal(t, orig, readBack(t, snap, 0, 4*mib), "the snapshot is frozen")
	_, err = snap.WriteAt(make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrReadOnly)

	c, err := s.Clone("snap", "c", "")
	require.NoError(t, err)
	require.Equal(t, orig, readBack(t, c, 0, 4*mib))
	write(t, c, pattern(53, 512), 0)
	require.Equal(t, orig[:512], readBack(t, snap, 0, 512))
	require.Equal(t, want[:512], readBack(t, v, 0, 512))
	require.ElementsMatch(t, []string{"v", "c"}, snap.Clones())

	_, err = s.Clone("v", "c2", "")
	require.ErrorIs(t, err, ErrInvalid, "source is not a snapshot")
	_, err = s.Snapshot("v", "c", "")
	require.ErrorIs(t, err, ErrExists)
	_, err = s.Snapshot("nope", "s2", "")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, s.Resize("snap", 8*mib), ErrReadOnly)

	// Reload keeps the tree.
	got, err := LoadLvstore(base)
	require.NoError(t, err)
	gsnap, _ := got.Lvol("snap")
	require.ElementsMatch(t, []string{"v", "c"}, gsnap.Clones())
	gv, _ := got.Lvol("v")
	require.Equal(t, want, readBack(t, gv, 0, 4*mib))

	require.ErrorIs(t, s.Delete("snap"), ErrBusy, "two clones")
	require.NoError(t, s.Delete("c"))
	require.NoError(t, s.Delete("snap"), "one clone: merged into it")
	require.False(t, v.IsClone())
	require.Equal(t, want, readBack(t, v, 0, 4*mib))
	require.Equal(t, uint64(4), v.AllocatedClusters())
	require.Equal(t, s.TotalDataClusters()-4, s.FreeClusters())
}

func TestResizeAndRename(t *testing.T) {
	base := NewMemory(512, 16*mib/512)
	s := newStore(t, base, LvstoreOptions{ClusterSize: mib})
	v, err := s.CreateLvol("v", "", 2*mib, false, "")
	require.NoError(t, err)
	require.NoError(t, s.Resize("v", 5*mib-1))
	require.Equal(t, uint64(5*mib), v.SizeBytes())
	require.Equal(t, uint64(10), s.FreeClusters())
	require.ErrorIs(t, s.Resize("v", 16*mib), ErrNoSpace)
	require.Equal(t, uint64(5*mib), v.SizeBytes())
	require.NoError(t, s.Resize("v", mib))
	require.Equal(t, uint64(14), s.FreeClusters())
	require.ErrorIs(t, s.Resize("zz", mib), ErrNotFound)

	require.NoError(t, s.Rename("v", "w"))
	require.NoError(t, s.Rename("w", "w"), "its own name: nothing to do")
	got, err := LoadLvstore(base)
	require.NoError(t, err)
	w, ok := got.Lvol("w")
	require.True(t, ok)
	require.Equal(t, uint64(mib), w.SizeBytes())
	require.Equal(t, v.UUID(), w.UUID())
}

func TestLvolConcurrentFirstWrites(t *testing.T) {
	s := newStore(t, NewMemory(512, 16*mib/512), LvstoreOptions{ClusterSize: mib})
	v, err := s.CreateLvol("v", "", 8*mib, true, "")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := v.WriteAt(pattern(uint64(i), 4096), int64(i)*(mib/2))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, uint64(8), v.AllocatedClusters())
	for i := range 16 {
		require.Equal(t, pattern(uint64(i), 4096), readBack(t, v, int64(i)*(mib/2), 4096))
	}
}

// countingDevice counts the bytes read through it.
type countingDevice struct {
	Device
	mu   sync.Mutex
	read int64
}

func (d *countingDevice) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.read += int64(len(p))
	d.mu.Unlock()
	return d.Device.ReadAt(p, off)
}

// stripedCounter is a countingDevice that passes its raid0's layout on.
type stripedCounter struct {
	countingDevice
	r *Raid0
}

func (d *stripedCounter) Stripes() (int64, int) { return d.r.Stripes() }

func countStriped(r *Raid0) *stripedCounter {
	return &stripedCounter{countingDevice: countingDevice{Device: r}, r: r}
}

// On the raid0 layout it was created on, loading reads the superblock with
// the payload, the trailer and one unit per member (not the checked
// region), and finds every member in another place (members 5 and 7 of 8
// at 64 KiB strips show at 320 and 448 KiB, beyond the dense part and not
// at a power of two) and every other strip size or member count.
func TestLvstoreLoadChecksEveryMemberStrip(t *testing.T) {
	members := make([]Device, 8)
	for i := range members {
		members[i] = NewMemory(512, 8*mib/512)
	}
	s := newStore(t, raid(t, 64, members...), LvstoreOptions{Name: "eight"})
	l, err := s.CreateLvol("vol", "", 16*mib, false, "")
	require.NoError(t, err)
	data := pattern(5, 200*1024)
	write(t, l, data, 3*mib)

	c := countStriped(raid(t, 64, members...))
	again, err := LoadLvstore(c)
	require.NoError(t, err)
	require.Equal(t, s.UUID(), again.UUID())
	require.Equal(t, int64((2+1+7)*4096), c.read, "superblock and payload, trailer, one unit on each other member")
	gl, ok := again.Lvol("vol")
	require.True(t, ok)
	require.Equal(t, data, readBack(t, gl, 3*mib, len(data)))

	swapped := slices.Clone(members)
	swapped[5], swapped[7] = swapped[7], swapped[5]
	_, err = LoadLvstore(countStriped(raid(t, 64, swapped...)))
	require.ErrorIs(t, err, ErrNoLvstore, "members 5 and 7 swapped")
	other := slices.Clone(members)
	other[3] = NewMemory(512, 8*mib/512)
	_, err = LoadLvstore(countStriped(raid(t, 64, other...)))
	require.ErrorIs(t, err, ErrNoLvstore, "member 3 another device")
	for name, r := range map[string]*Raid0{
		"larger strip":  raid(t, 128, members...),
		"smaller strip": raid(t, 32, members...),
		"seven members": raid(t, 64, members[:7]...),
	} {
		_, err := LoadLvstore(countStriped(r))
		require.ErrorIs(t, err, ErrNoLvstore, name)
	}

	// The same layout seen without its striping (a wrapper that does not
	// say): the full check of every unit the stamps went to (more than the
	// members' units), which finds it as well, and finds the members in
	// another order or at another strip behind such a wrapper too.
	full := &countingDevice{Device: raid(t, 64, members...)}
	_, err = LoadLvstore(full)
	require.NoError(t, err)
	require.Greater(t, full.read, int64((2+1+7)*4096), "the full check, not the members' units only")
	for name, d := range map[string]Device{
		"members 5 and 7 swapped": raid(t, 64, swapped...),
		"member 3 another device": raid(t, 64, other...),
		"larger strip":            raid(t, 128, members...),
		"smaller strip":           raid(t, 32, members...),
		"seven members":           raid(t, 64, members[:7]...),
	} {
		_, err := LoadLvstore(&countingDevice{Device: d})
		require.ErrorIs(t, err, ErrNoLvstore, "behind a wrapper: %s", name)
	}
}

// Loading reads a bounded part of a large metadata region, yet still finds
// a raid0 assembled with another strip size or member order where that
// shows only beyond the densely checked first 256 KiB.
func TestLvstoreLoadChecksBeyondDenseUnits(t *testing.T) {
	members := make([]Device, 8)
	for i := range members {
		members[i] = NewMemory(4096, 16*mib/4096)
	}
	s := newStore(t, raid(t, 1024, members[:2]...), LvstoreOptions{Name: "big", ClusterSize: 4 * mib})
	require.Equal(t, uint64(1024), s.mdUnitsCount(), "a 4 MiB metadata region")
	c := &countingDevice{Device: raid(t, 1024, members[:2]...)}
	again, err := LoadLvstore(c)
	require.NoError(t, err)
	require.Equal(t, s.UUID(), again.UUID())
	require.Less(t, c.read, int64(256<<10+8*4096), "reads the first 256 KiB and a few units")
	_, err = LoadLvstore(raid(t, 2048, members[:2]...))
	require.ErrorIs(t, err, ErrNoLvstore, "a larger strip shows at unit 256 only")
	_, err = LoadLvstore(raid(t, 512, members[:2]...))
	require.ErrorIs(t, err, ErrNoLvstore, "a smaller strip shows at unit 128 only")

	order := []Device{members[2], members[3], members[4], members[5], members[7], members[6]}
	s = newStore(t, raid(t, 256, order...), LvstoreOptions{Name: "wide", ClusterSize: 4 * mib})
	_, err = LoadLvstore(raid(t, 256, order...))
	require.NoError(t, err)
	swapped := []Device{members[2], members[3], members[4], members[5], members[6], members[7]}
	_, err = LoadLvstore(raid(t, 256, swapped...))
	require.ErrorIs(t, err, ErrNoLvstore, "members 4 and 5 swapped show at 1 MiB (unit 256) only")
}

// TestGeometryAsSPDK checks the cluster counts against what SPDK v24.01
// reported (bdev_lvol_get_lvstores total_data_clusters) for the same bases.
func TestGeometryAsSPDK(t *testing.T) {
	for _, c := range []struct {
		blocks  uint64
		bs      uint32
		cluster uint64
		ratio   uint32
		data    uint64
	}{
		{131072, 512, 1 << 20, 100, 63}, {131072, 512, 8192, 100, 4094}, {131072, 512, 12288, 100, 3639},
		{131072, 512, 1536000, 100, 42}, {131072, 512, 4 << 20, 100, 15}, {131072, 512, 64 << 20, 100, 0},
		{131072, 512, 12 << 20, 100, 4}, {131072, 512, 4 << 20, 100000, 0}, {131072, 512, 4096, 1, 16217},
		{100003, 512, 1 << 20, 100, 47}, {100003, 512, 8192, 100, 3123}, {100003, 512, 12288, 100, 2776},
		{100003, 512, 1536000, 100, 32}, {100003, 512, 4 << 20, 100, 11}, {100003, 512, 12 << 20, 100, 3},
		{100003, 512, 4096, 1, 12371}, {64, 512, 8192, 100, 0}, {64, 512, 16384, 100, 0},
	} {
		total, md, err := Geometry(c.blocks, c.bs, c.cluster, c.ratio)
		require.NoError(t, err, "%+v", c)
		require.Equal(t, c.data, total-md, "%+v", c)
	}
	for _, c := range []struct {
		blocks  uint64
		bs      uint32
		cluster uint64
		ratio   uint32
		err     error
	}{
		{131072, 512, 4096, 100, ErrNoMemory}, {131072, 512, 5000, 100, ErrNoMemory}, {131072, 512, 1024, 100, ErrInvalid},
		{131072, 512, 4095, 100, ErrInvalid}, {131072, 512, 4 << 20, 1, ErrInvalid}, {131072, 512, 128 << 20, 100, ErrInvalid},
		{64, 512, 4 << 20, 100, ErrInvalid}, {64, 512, 4096, 100, ErrNoMemory},
	} {
		_, _, err := Geometry(c.blocks, c.bs, c.cluster, c.ratio)
		require.ErrorIs(t, err, c.err, "%+v", c)
	}
}
