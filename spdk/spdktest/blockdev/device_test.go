package blockdev

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func readBack(t *testing.T, d Device, off int64, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	got, err := d.ReadAt(p, off)
	require.NoError(t, err)
	require.Equal(t, n, got)
	return p
}

func TestMemoryRoundTripAndSparse(t *testing.T) {
	m := NewMemory(512, 1<<21) // 1 GiB, never allocated in full
	require.Equal(t, int64(1<<30), SizeBytes(m))
	require.Zero(t, m.AllocatedBytes())
	require.Equal(t, make([]byte, 4096), readBack(t, m, 1<<29, 4096))

	data := pattern(1, 3*memChunkTarget+512) // spans chunk boundaries
	off := int64(memChunkTarget - 512)
	n, err := m.WriteAt(data, off)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	require.Equal(t, data, readBack(t, m, off, len(data)))
	require.LessOrEqual(t, m.AllocatedBytes(), int64(5*memChunkTarget))
	// Neighbouring blocks stay zero.
	require.Equal(t, make([]byte, 512), readBack(t, m, off-512, 512))

	require.NoError(t, m.WriteZeroes(off, int64(len(data))))
	require.Equal(t, make([]byte, len(data)), readBack(t, m, off, len(data)))
	require.Less(t, m.AllocatedBytes(), int64(3*memChunkTarget), "whole zeroed chunks are released")
}

func TestMemoryRejectsBadIO(t *testing.T) {
	m := NewMemory(4096, 8)
	_, err := m.WriteAt(make([]byte, 4096), 8*4096)
	require.ErrorIs(t, err, ErrOutOfRange)
	_, err = m.ReadAt(make([]byte, 8192), 7*4096)
	require.ErrorIs(t, err, ErrOutOfRange)
	_, err = m.ReadAt(make([]byte, 4096), 100)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = m.WriteAt(make([]byte, 100), 0)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = m.WriteAt(make([]byte, 4096), -4096)
	require.ErrorIs(t, err, ErrInvalid)
	require.Equal(t, uint32(512), NewMemory(0, 1).BlockSize())
}

func TestMemoryConcurrentWriters(t *testing.T) {
	m := NewMemory(512, 1024)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := m.WriteAt(pattern(uint64(i), 64*512), int64(i)*64*512)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	for i := range 8 {
		require.Equal(t, pattern(uint64(i), 64*512), readBack(t, m, int64(i)*64*512, 64*512))
	}
}

func TestFilePersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := CreateFile(path, 512, 4<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(8192), f.NumBlocks())
	data := pattern(7, 8192)
	_, err = f.WriteAt(data, 1<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "Close is idempotent")
	_, err = f.ReadAt(make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrClosed)

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, data, raw[1<<20:1<<20+8192], "the bytes live in the file")

	g, err := OpenFile(path, 4096)
	require.NoError(t, err)
	defer g.Close()
	require.Equal(t, uint64(1024), g.NumBlocks())
	require.Equal(t, data, readBack(t, g, 1<<20, 8192))
	require.NoError(t, g.WriteZeroes(1<<20, 4096))
	require.Equal(t, make([]byte, 4096), readBack(t, g, 1<<20, 4096))
	require.Equal(t, data[4096:], readBack(t, g, 1<<20+4096, 4096))
	_, err = g.WriteAt(make([]byte, 4096), 1<<22)
	require.ErrorIs(t, err, ErrOutOfRange)
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenFile(filepath.Join(dir, "missing"), 512)
	require.True(t, errors.Is(err, os.ErrNotExist))
	_, err = OpenFile(dir, 512)
	require.Error(t, err, "a directory is not a disk")
	_, err = OpenFile(filepath.Join(dir, "x"), 100)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestRaid0Geometry(t *testing.T) {
	a, b, c := NewMemory(512, 2048+100), NewMemory(512, 4096), NewMemory(512, 3000)
	r, err := NewRaid0([]Device{a, b, c}, 64)
	require.NoError(t, err)
	// smallest member 2148 blocks = 1074 KiB -> 16 strips of 64 KiB = 2048 blocks.
	require.Equal(t, uint64(3*2048), r.NumBlocks())
	require.Equal(t, uint32(64), r.StripSizeKB())
	require.Len(t, r.Members(), 3)

	for _, tc := range []struct {
		off, moff int64
		member    int
	}{
		{0, 0, 0},
		{64<<10 - 512, 64<<10 - 512, 0},
		{64 << 10, 0, 1},
		{2 * 64 << 10, 0, 2},
		{3 * 64 << 10, 64 << 10, 0},
		{4*64<<10 + 4096, 64<<10 + 4096, 1},
	} {
		i, moff := r.Locate(tc.off)
		require.Equal(t, tc.member, i, "offset %d", tc.off)
		require.Equal(t, tc.moff, moff, "offset %d", tc.off)
	}

	_, err = NewRaid0(nil, 64)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewRaid0([]Device{a, b}, 48)
	require.ErrorIs(t, err, ErrInvalid, "strip not a power of two")
	_, err = NewRaid0([]Device{NewMemory(4096, 64)}, 2)
	require.ErrorIs(t, err, ErrInvalid, "strip smaller than block")
	_, err = NewRaid0([]Device{a, NewMemory(4096, 64)}, 64)
	require.ErrorIs(t, err, ErrInvalid, "mixed block sizes")
	_, err = NewRaid0([]Device{a, nil}, 64)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestRaid0StripesDataAcrossMembers(t *testing.T) {
	a, b := NewMemory(512, 1024), NewMemory(512, 1024)
	r, err := NewRaid0([]Device{a, b}, 4)
	require.NoError(t, err)
	data := pattern(3, 5*4096+1024) // crosses several strips, unaligned to strips
	off := int64(2048)
	_, err = r.WriteAt(data, off)
	require.NoError(t, err)
	require.Equal(t, data, readBack(t, r, off, len(data)))

	// Strip 0 (bytes 2048..4095 of data start) is on a, strip 1 on b, strip 2 on a at 4 KiB.
	require.Equal(t, data[:2048], readBack(t, a, 2048, 2048))
	require.Equal(t, data[2048:6144], readBack(t, b, 0, 4096))
	require.Equal(t, data[6144:10240], readBack(t, a, 4096, 4096))

	// The same members in another order present different bytes.
	swapped, err := NewRaid0([]Device{b, a}, 4)
	require.NoError(t, err)
	require.NotEqual(t, data, readBack(t, swapped, off, len(data)))
	// The same order re-assembled elsewhere presents the same bytes.
	again, err := NewRaid0([]Device{a, b}, 4)
	require.NoError(t, err)
	require.Equal(t, data, readBack(t, again, off, len(data)))

	require.NoError(t, r.WriteZeroes(0, 16384))
	require.Equal(t, make([]byte, 8192), readBack(t, a, 0, 8192))
	_, err = r.ReadAt(make([]byte, 512), int64(SizeBytes(r)))
	require.ErrorIs(t, err, ErrOutOfRange)
}

func TestWriteZeroesOnPlainDevice(t *testing.T) {
	m := NewMemory(512, 4096)
	_, err := m.WriteAt(pattern(5, 2<<20), 0)
	require.NoError(t, err)
	require.NoError(t, WriteZeroes(plainDevice{m}, 512, 2<<20-1024))
	got := readBack(t, m, 0, 2<<20)
	require.Equal(t, pattern(5, 512), got[:512])
	require.True(t, bytes.Equal(make([]byte, 2<<20-1024), got[512:2<<20-512]))
	require.ErrorIs(t, WriteZeroes(plainDevice{m}, 0, 3<<20), ErrOutOfRange)
}

func TestZeroesOverHugeSparseRanges(t *testing.T) {
	a, b := NewMemory(512, 1<<31), NewMemory(512, 1<<31) // 1 TiB each, sparse
	r := raid(t, 64, a, b)
	data := pattern(9, 192<<10)
	for _, off := range []int64{0, 100 << 30, SizeBytes(r) - int64(len(data))} {
		write(t, r, data, off)
	}
	// From the middle of a strip to the middle of one: head, whole rows, tail.
	require.NoError(t, r.WriteZeroes(4096, SizeBytes(r)-8192))
	require.Equal(t, data[:4096], readBack(t, r, 0, 4096))
	require.Equal(t, make([]byte, len(data)-4096), readBack(t, r, 4096, len(data)-4096))
	require.Equal(t, make([]byte, len(data)), readBack(t, r, 100<<30, len(data)))
	end := SizeBytes(r) - int64(len(data))
	require.Equal(t, make([]byte, len(data)-4096), readBack(t, r, end, len(data)-4096))
	require.Equal(t, data[len(data)-4096:], readBack(t, r, SizeBytes(r)-4096, 4096))
	require.LessOrEqual(t, a.AllocatedBytes()+b.AllocatedBytes(), int64(4*memChunkTarget))

	s := newStore(t, r, LvstoreOptions{})
	// 524288 clusters need 1+524288 metadata pages (ratio 100): 513 clusters.
	require.Equal(t, uint64(524288-513), s.TotalDataClusters())
	v, err := s.CreateLvol("big", "", 1<<40, false, "")
	require.NoError(t, err)
	write(t, v, data, 1<<40-int64(len(data)))
	got, err := LoadLvstore(r)
	require.NoError(t, err)
	gv, ok := got.Lvol("big")
	require.True(t, ok)
	require.Equal(t, data, readBack(t, gv, 1<<40-int64(len(data)), len(data)))
}
