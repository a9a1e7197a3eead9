package blockdev

import (
	"encoding/json"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzUnit is the smallest store geometry: 512-byte blocks, 16 KiB
// clusters, so a whole metadata region fits in a fuzz input.
const fuzzCluster = 16 << 10

func deviceFrom(data []byte) *Memory {
	n := max(uint64(len(data)+511)/512, 2*fuzzCluster/512)
	m := NewMemory(512, n)
	buf := make([]byte, n*512)
	copy(buf, data)
	_, _ = m.WriteAt(buf, 0)
	return m
}

func image(t testing.TB, m *Memory) []byte {
	p := make([]byte, SizeBytes(m))
	_, err := m.ReadAt(p, 0)
	require.NoError(t, err)
	return p
}

// FuzzLoadLvstore: loading arbitrary bytes never panics, and whatever
// loads is usable.
func FuzzLoadLvstore(f *testing.F) {
	m := NewMemory(512, 4*fuzzCluster/512)
	s, err := CreateLvstore(m, LvstoreOptions{Name: "f", ClusterSize: fuzzCluster})
	require.NoError(f, err)
	f.Add(image(f, m)[:fuzzCluster])
	v, err := s.CreateLvol("v", "", fuzzCluster, true, "")
	require.NoError(f, err)
	_, err = v.WriteAt(make([]byte, 512), 0)
	require.NoError(f, err)
	_, err = s.Snapshot("v", "snap", "")
	require.NoError(f, err)
	f.Add(image(f, m))
	f.Add([]byte("VDALVS01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadLvstore(deviceFrom(data))
		if err != nil {
			require.ErrorIs(t, err, ErrNoLvstore)
			return
		}
		exercise(t, s)
	})
}

// FuzzLvstorePayload wraps arbitrary JSON in valid units and checksums, so
// the payload checks (cluster maps, parent links) are what is fuzzed.
func FuzzLvstorePayload(f *testing.F) {
	f.Add(seedPayload())
	f.Add([]byte(`{"cluster_size":16384,"md_clusters":1,"total_clusters":4,"block_size":512,"lvols":[{"name":"a","uuid":"a","parent":"a","clear_method":"none","clusters":[1]}]}`))
	f.Add([]byte(`{"cluster_size":16384,"md_clusters":1,"total_clusters":4,"block_size":512,"lvols":[{"name":"a","uuid":"a","clear_method":"none","clusters":[7,0]}]}`))
	// A recorded raid0 layout: the load checks the units it names.
	f.Add([]byte(`{"cluster_size":16384,"md_clusters":1,"total_clusters":4,"block_size":512,"lvols":[],"layout":{"strip":4096,"members":2}}`))
	f.Add([]byte(`{"cluster_size":16384,"md_clusters":1,"total_clusters":4,"block_size":512,"lvols":[],"layout":{"strip":9223372036854775807,"members":2147483647}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		m, ok := payloadImage(t, js)
		if !ok {
			return
		}
		got, err := LoadLvstore(m)
		if err != nil {
			require.ErrorIs(t, err, ErrNoLvstore)
			return
		}
		exercise(t, got)
	})
}

// exercise reads and writes every lvol of a loaded store; it must not
// panic and free clusters must stay consistent.
func exercise(t *testing.T, s *Lvstore) {
	require.LessOrEqual(t, s.FreeClusters(), s.TotalDataClusters())
	for _, l := range s.Lvols() {
		if l.NumBlocks() == 0 {
			continue
		}
		_, err := l.ReadAt(make([]byte, 512), int64(l.NumBlocks()-1)*512)
		require.NoError(t, err)
		_, _ = l.WriteAt(make([]byte, 512), 0)
		_ = l.Clones()
		_ = l.Parent()
	}
	for _, l := range s.Lvols() {
		_ = s.Delete(l.Name())
	}
}

// payloadImage builds a 64 KiB store image around the JSON payload js.
func payloadImage(t *testing.T, js []byte) (*Memory, bool) {
	m := NewMemory(512, 4*fuzzCluster/512)
	s := &Lvstore{base: m, clusterSize: fuzzCluster, unitSize: 4096, mdClusters: 1, totalClusters: 4}
	require.NoError(t, s.writeStamps())
	per := 4096 - unitHeaderLen
	units := (len(js) + per - 1) / per
	if units+2 > 4 {
		return nil, false
	}
	buf := make([]byte, (units+1)*4096)
	for i := range units {
		putUnit(buf[(i+1)*4096:(i+2)*4096], unitHeader{index: uint32(i + 1), kind: kindPayload}, js[i*per:min(len(js), (i+1)*per)])
	}
	sb := superblock{unitSize: 4096, mdUnits: 4, payloadUnits: uint32(units), payloadLen: uint64(len(js)),
		payloadCRC: crc32.Checksum(js, crcTable), clusterSize: fuzzCluster, totalClusters: 4}.encode()
	putUnit(buf[:4096], unitHeader{kind: kindSuper}, sb)
	tr := make([]byte, 4096)
	putUnit(tr, unitHeader{index: 3, kind: kindTrailer}, sb)
	_, _ = m.WriteAt(buf, 0)
	_, _ = m.WriteAt(tr, 3*4096)
	return m, true
}

func seedPayload() []byte {
	ok, _ := json.Marshal(payload{Name: "x", ClusterSize: fuzzCluster, MDClusters: 1, TotalClusters: 4, BlockSize: 512,
		ClearMethod: ClearNone, Lvols: []lvolEntry{
			{Name: "s", UUID: "u1", Snapshot: true, ClearMethod: ClearNone, Clusters: []uint32{1, 0}},
			{Name: "c", UUID: "u2", Parent: "u1", ClearMethod: ClearNone, Clusters: []uint32{0, 2}},
		}})
	return ok
}

func TestPayloadImageLoads(t *testing.T) {
	m, ok := payloadImage(t, seedPayload())
	require.True(t, ok)
	s, err := LoadLvstore(m)
	require.NoError(t, err)
	require.Equal(t, uint64(1), s.FreeClusters())
	c, found := s.Lvol("c")
	require.True(t, found)
	require.Equal(t, "s", c.Parent())
	bad, ok := payloadImage(t, []byte(`{"cluster_size":16384,"md_clusters":1,"total_clusters":4,"block_size":512,"lvols":[{"name":"a","uuid":"a","clear_method":"none","clusters":[7,0]}]}`))
	require.True(t, ok)
	_, err = LoadLvstore(bad)
	require.ErrorIs(t, err, ErrNoLvstore, "cluster beyond the store")
}
