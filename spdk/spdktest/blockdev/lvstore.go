package blockdev

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/google/uuid"
)

// Lvstore defaults, as SPDK's.
const (
	DefaultClusterSize = 4 << 20
	DefaultMDRatio     = 100
	maxLvsName         = 63
)

// Clear methods (SPDK's clear_method values).
const (
	ClearNone        = "none"
	ClearUnmap       = "unmap"
	ClearWriteZeroes = "write_zeroes"
)

// LvstoreOptions configures CreateLvstore. Zero values take SPDK's
// defaults: a random UUID, 4 MiB clusters, clear method "unmap" and 100
// metadata pages per 100 clusters.
type LvstoreOptions struct {
	Name                   string
	UUID                   string
	ClusterSize            uint64
	ClearMethod            string
	MDPagesPerClusterRatio uint32
}

// Lvstore is a logical volume store on a base device. Every mutation
// persists its metadata on the base before it returns. It is safe for
// concurrent use.
type Lvstore struct {
	base        Device
	clusterSize uint64
	unitSize    uint32
	instanceID  [16]byte
	layout      *stripeLayout // of the base at creation (see readMetadata)

	mu            sync.RWMutex
	name, uuid    string
	clearMethod   string
	mdRatio       uint32
	mdClusters    uint64
	totalClusters uint64
	generation    uint64
	used          []bool // per cluster; metadata clusters are always used
	free          uint64
	lowFree       uint64  // no free cluster below this index
	lvols         []*Lvol // creation order
	cloneSeq      uint64  // last Lvol.cloneSeq handed out
	destroyed     bool
	payloadBuf    []byte // persistLocked's last encoding, reused for the next
}

func validClear(m string, allowEmpty bool) bool {
	switch m {
	case ClearNone, ClearUnmap, ClearWriteZeroes:
		return true
	case "":
		return allowEmpty
	}
	return false
}

// CreateLvstore formats base as a new lvstore and writes its metadata.
func CreateLvstore(base Device, o LvstoreOptions) (*Lvstore, error) {
	if base == nil {
		return nil, fmt.Errorf("%w: nil base", ErrInvalid)
	}
	if o.Name == "" || len(o.Name) > maxLvsName {
		return nil, fmt.Errorf("%w: lvstore name %q", ErrInvalid, o.Name)
	}
	if !validClear(o.ClearMethod, true) {
		return nil, fmt.Errorf("%w: clear method %q", ErrInvalid, o.ClearMethod)
	}
	o.ClearMethod = cmp(o.ClearMethod, ClearUnmap)
	if o.ClusterSize == 0 {
		o.ClusterSize = DefaultClusterSize
	}
	if o.MDPagesPerClusterRatio == 0 {
		o.MDPagesPerClusterRatio = DefaultMDRatio
	}
	if o.UUID == "" {
		o.UUID = uuid.NewString()
	}
	bs := uint64(base.BlockSize())
	unit := max(4096, bs)
	total, mdClusters, err := Geometry(base.NumBlocks(), base.BlockSize(), o.ClusterSize, o.MDPagesPerClusterRatio)
	if err != nil {
		return nil, err
	}
	id, err := newInstanceID()
	if err != nil {
		return nil, err
	}
	s := &Lvstore{
		base: base, clusterSize: o.ClusterSize, unitSize: uint32(unit), instanceID: id,
		name: o.Name, uuid: o.UUID, clearMethod: o.ClearMethod, mdRatio: o.MDPagesPerClusterRatio,
		mdClusters: mdClusters, totalClusters: total, layout: layoutOf(base),
	}
	s.rebuildUsedLocked()
	if o.ClearMethod != ClearNone {
		// SPDK unmaps the whole base when it creates a store.
		dataOff := (int64(mdClusters*o.ClusterSize) + int64(bs) - 1) / int64(bs) * int64(bs)
		if err := WriteZeroes(base, dataOff, max(0, SizeBytes(base)-dataOff)); err != nil {
			return nil, fmt.Errorf("blockdev: clear lvstore base: %w", err)
		}
	}
	if err := s.writeStamps(); err != nil {
		return nil, err
	}
	if err := s.persistLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrNoMemory is SPDK's ENOMEM where it stands for "does not fit" (an
// lvstore whose metadata needs more clusters than the base has).
var ErrNoMemory = errors.New("blockdev: cannot allocate memory")

// Geometry computes an lvstore's clusters as SPDK v24.01 does
// (spdk_lvs_init, then spdk_bs_init): total clusters of the base and how
// many of them the blobstore metadata takes. Errors are SPDK's: ErrInvalid
// (EINVAL: block size not dividing 4 KiB, no metadata page, cluster smaller
// than 4 KiB), ErrNoSpace (ENOSPC: base smaller than a cluster) and
// ErrNoMemory (ENOMEM: metadata larger than the base).
func Geometry(blockCnt uint64, blockLen uint32, clusterSz uint64, ratio uint32) (total, md uint64, err error) {
	const page = 4096
	bl := uint64(blockLen)
	if bl == 0 || clusterSz < bl || clusterSz > 1<<32-1 {
		return 0, 0, fmt.Errorf("%w: cluster size %d with block size %d", ErrInvalid, clusterSz, bl)
	}
	// spdk_lvs_init: uint32 arithmetic.
	lvsTotal := uint32(blockCnt / (clusterSz / bl))
	mdPages := uint64(ratio*lvsTotal) / 100
	if page%bl != 0 || mdPages == 0 {
		return 0, 0, fmt.Errorf("%w: block size %d, %d metadata pages", ErrInvalid, bl, mdPages)
	}
	if blockCnt*bl < clusterSz {
		return 0, 0, fmt.Errorf("%w: base of %d bytes is smaller than a cluster of %d", ErrNoSpace, blockCnt*bl, clusterSz)
	}
	if clusterSz < page {
		return 0, 0, fmt.Errorf("%w: cluster size %d is smaller than a page", ErrInvalid, clusterSz)
	}
	total = blockCnt / (clusterSz / bl)
	mask := func(bits uint64) uint64 { return (8 + (bits+7)/8 + page - 1) / page }
	pages := 1 + mask(mdPages) + max(mask(mdPages), mask(total)) + mask(mdPages) + mdPages
	ppc := clusterSz / page
	md = (pages + ppc - 1) / ppc
	if md > total {
		return 0, 0, fmt.Errorf("%w: metadata needs %d clusters, the base has %d", ErrNoMemory, md, total)
	}
	return total, md, nil
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *Lvstore) mdUnitsCount() uint64 {
	return s.mdClusters * s.clusterSize / uint64(s.unitSize)
}

// LoadLvstore examines base and loads the lvstore on it. It fails with
// ErrNoLvstore when there is none or its metadata does not check out (for
// example a raid0 assembled in another member order or strip size).
func LoadLvstore(base Device) (*Lvstore, error) {
	if base == nil {
		return nil, fmt.Errorf("%w: nil base", ErrNoLvstore)
	}
	p, h, sb, err := readMetadata(base)
	if err != nil {
		return nil, err
	}
	unit := uint64(sb.unitSize)
	if p.ClusterSize != sb.clusterSize || p.TotalClusters != sb.totalClusters || p.ClusterSize < unit ||
		p.MDClusters == 0 || p.MDClusters > p.TotalClusters ||
		p.MDClusters*p.ClusterSize/unit != sb.mdUnits || p.BlockSize != base.BlockSize() ||
		p.TotalClusters != base.NumBlocks()/(p.ClusterSize/uint64(p.BlockSize)) {
		return nil, fmt.Errorf("%w: metadata geometry does not match the base", ErrNoLvstore)
	}
	s := &Lvstore{
		base: base, clusterSize: p.ClusterSize, unitSize: sb.unitSize, instanceID: h.id,
		name: p.Name, uuid: p.UUID, clearMethod: p.ClearMethod, mdRatio: p.MDRatio,
		mdClusters: p.MDClusters, totalClusters: p.TotalClusters, generation: h.generation, layout: p.Layout,
	}
	if err := s.loadLvolsLocked(p.Lvols); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoLvstore, err)
	}
	return s, nil
}

// loadLvolsLocked rebuilds the lvols from the payload and checks that the
// cluster maps and parent links are consistent.
func (s *Lvstore) loadLvolsLocked(entries []lvolEntry) error {
	s.rebuildUsedLocked()
	byUUID := map[string]*Lvol{}
	names := map[string]bool{}
	for _, e := range entries {
		if e.Name == "" || names[e.Name] || byUUID[e.UUID] != nil || !validClear(e.ClearMethod, false) {
			return fmt.Errorf("bad lvol %q", e.Name)
		}
		names[e.Name] = true
		l := &Lvol{store: s, name: e.Name, uuid: e.UUID, thin: e.Thin, snapshot: e.Snapshot,
			readOnly: e.ReadOnly || e.Snapshot, cloneSeq: uint64(len(s.lvols)), clearMethod: e.ClearMethod, clusters: slices.Clone(e.Clusters)}
		if l.clusters == nil {
			l.clusters = []uint32{}
		}
		if n := e.NumClusters; n > uint64(len(l.clusters)) && n <= maxLvolClusters {
			l.clusters = append(l.clusters, make([]uint32, n-uint64(len(l.clusters)))...)
		}
		for _, c := range l.clusters {
			if c == 0 {
				continue
			}
			if uint64(c) < s.mdClusters || uint64(c) >= s.totalClusters || s.used[c] {
				return fmt.Errorf("lvol %q: bad cluster %d", e.Name, c)
			}
			s.used[c] = true
			s.free--
		}
		byUUID[e.UUID] = l
		s.lvols = append(s.lvols, l)
	}
	s.cloneSeq = uint64(len(s.lvols))
	for i, e := range entries {
		if e.Parent == "" {
			continue
		}
		p := byUUID[e.Parent]
		if p == nil || !p.readOnly || p == s.lvols[i] {
			return fmt.Errorf("lvol %q: bad parent %q", e.Name, e.Parent)
		}
		s.lvols[i].parent = p
	}
	for _, l := range s.lvols { // parent chains must end
		depth := 0
		for p := l.parent; p != nil; p = p.parent {
			if depth++; depth > len(s.lvols) {
				return fmt.Errorf("lvol %q: parent cycle", l.name)
			}
		}
	}
	return nil
}

func (s *Lvstore) rebuildUsedLocked() {
	s.used = make([]bool, s.totalClusters)
	for i := range s.mdClusters {
		s.used[i] = true
	}
	s.free = s.totalClusters - s.mdClusters
	s.lowFree = s.mdClusters
}

func (s *Lvstore) payloadLocked() payload {
	p := payload{
		Name: s.name, UUID: s.uuid, ClusterSize: s.clusterSize, ClearMethod: s.clearMethod, MDRatio: s.mdRatio,
		MDClusters: s.mdClusters, TotalClusters: s.totalClusters, BlockSize: s.base.BlockSize(),
		Lvols: make([]lvolEntry, 0, len(s.lvols)), Layout: s.layout,
	}
	for _, l := range s.lvols {
		// A thin lvol's map is mostly zeros: the trailing ones are cut so
		// that huge thin lvols fit in the metadata region.
		last := len(l.clusters)
		for last > 0 && l.clusters[last-1] == 0 {
			last--
		}
		e := lvolEntry{Name: l.name, UUID: l.uuid, Thin: l.thin, Snapshot: l.snapshot, ReadOnly: l.readOnly,
			ClearMethod: l.clearMethod, Clusters: l.clusters[:last], NumClusters: uint64(len(l.clusters))}
		if l.parent != nil {
			e.Parent = l.parent.uuid
		}
		p.Lvols = append(p.Lvols, e)
	}
	return p
}

// Base is the device the store lives on.
func (s *Lvstore) Base() Device { return s.base }

// Name is the store's name.
func (s *Lvstore) Name() string { s.mu.RLock(); defer s.mu.RUnlock(); return s.name }

// UUID is the store's uuid.
func (s *Lvstore) UUID() string { s.mu.RLock(); defer s.mu.RUnlock(); return s.uuid }

// ClearMethod is the store's clear method.
func (s *Lvstore) ClearMethod() string { s.mu.RLock(); defer s.mu.RUnlock(); return s.clearMethod }

// ClusterSize is the cluster size in bytes.
func (s *Lvstore) ClusterSize() uint64 { return s.clusterSize }

// BlockSize is the base's block size.
func (s *Lvstore) BlockSize() uint32 { return s.base.BlockSize() }

// TotalDataClusters is the number of clusters not used by metadata.
func (s *Lvstore) TotalDataClusters() uint64 { return s.totalClusters - s.mdClusters }

// FreeClusters is the number of unallocated data clusters.
func (s *Lvstore) FreeClusters() uint64 { s.mu.RLock(); defer s.mu.RUnlock(); return s.free }

// Lvols lists the lvols in creation order.
func (s *Lvstore) Lvols() []*Lvol {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.lvols)
}

// Lvol finds an lvol by name or uuid.
func (s *Lvstore) Lvol(name string) (*Lvol, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.findLocked(name)
	return l, l != nil
}

func (s *Lvstore) findLocked(name string) *Lvol {
	for _, l := range s.lvols {
		if l.name == name {
			return l
		}
	}
	for _, l := range s.lvols {
		if l.uuid == name && name != "" {
			return l
		}
	}
	return nil
}

// Destroy deletes the store: its metadata is wiped so the base no longer
// loads, and every lvol becomes unusable (bdev_lvol_delete_lvstore).
func (s *Lvstore) Destroy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return nil
	}
	s.destroyed = true
	for _, l := range s.lvols {
		l.deleted = true
	}
	s.lvols = nil
	us := int64(s.unitSize)
	zero := make([]byte, us)
	if _, err := s.base.WriteAt(zero, 0); err != nil {
		return fmt.Errorf("blockdev: wipe lvstore: %w", err)
	}
	if _, err := s.base.WriteAt(zero, int64(s.mdUnitsCount()-1)*us); err != nil {
		return fmt.Errorf("blockdev: wipe lvstore: %w", err)
	}
	return nil
}

// LvstoreName returns the name of the lvstore whose metadata r (size
// bytes) holds in this package's format, if it holds one. Agents driving
// the fake SPDK use it to recognise their own aio PDs.
func LvstoreName(r io.ReaderAt, size int64) (string, bool) {
	p, _, _, err := readMetadata(readerDevice{r: r, size: size})
	if err != nil {
		return "", false
	}
	return p.Name, true
}

// readerDevice is a read-only Device over an io.ReaderAt.
type readerDevice struct {
	r    io.ReaderAt
	size int64
}

func (d readerDevice) BlockSize() uint32 { return 512 }
func (d readerDevice) NumBlocks() uint64 { return uint64(max(d.size, 0)) / 512 }
func (d readerDevice) ReadAt(p []byte, off int64) (int, error) {
	return d.r.ReadAt(p, off)
}
func (d readerDevice) WriteAt([]byte, int64) (int, error) { return 0, ErrReadOnly }
