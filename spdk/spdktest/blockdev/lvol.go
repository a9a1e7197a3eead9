package blockdev

import (
	"fmt"
	"slices"
)

// Lvol is a logical volume in an Lvstore. It is a Device: thin lvols
// allocate a cluster on its first write and read zeros (or their parent
// snapshot's data) before; snapshots are read-only.
type Lvol struct {
	store *Lvstore

	// Guarded by store.mu.
	name, uuid  string
	thin        bool
	snapshot    bool // SPDK's is_snapshot: made by Snapshot, or cloned from
	readOnly    bool // snapshots, and lvols set read-only
	parent      *Lvol
	cloneSeq    uint64 // orders the clones of a snapshot (SPDK appends to a list)
	clearMethod string
	clusters    []uint32 // physical cluster per logical cluster; 0 = not allocated
	deleted     bool
}

var _ Device = (*Lvol)(nil)

// rlock read-locks the lvol's store; runlock undoes it. (A method value
// such as l.store.mu.RUnlock returned as a func allocates on every call:
// 700,000 allocations of a 5 s create-to-usable run, from the listings.)
func (l *Lvol) rlock()   { l.store.mu.RLock() }
func (l *Lvol) runlock() { l.store.mu.RUnlock() }

// Name is the lvol's name inside its store.
func (l *Lvol) Name() string {
	l.rlock()
	defer l.runlock()
	return l.name
}

// UUID is the lvol's uuid (its bdev name in SPDK).
func (l *Lvol) UUID() string { return l.uuid }

// Store is the lvstore that holds the lvol.
func (l *Lvol) Store() *Lvstore { return l.store }

// Thin reports whether the lvol is thin provisioned.
func (l *Lvol) Thin() bool {
	l.rlock()
	defer l.runlock()
	return l.thin
}

// IsSnapshot reports whether the lvol is a snapshot: made by Snapshot, or
// a read-only lvol that was cloned (SPDK's is_snapshot).
func (l *Lvol) IsSnapshot() bool {
	l.rlock()
	defer l.runlock()
	return l.snapshot
}

// ReadOnly reports whether the lvol refuses writes (snapshots, and lvols
// set read-only).
func (l *Lvol) ReadOnly() bool {
	l.rlock()
	defer l.runlock()
	return l.readOnly
}

// IsClone reports whether the lvol has a parent snapshot.
func (l *Lvol) IsClone() bool {
	l.rlock()
	defer l.runlock()
	return l.parent != nil
}

// ClearMethod is the lvol's clear method.
func (l *Lvol) ClearMethod() string {
	l.rlock()
	defer l.runlock()
	return l.clearMethod
}

// Parent is the name of the lvol's parent snapshot, or "".
func (l *Lvol) Parent() string {
	l.rlock()
	defer l.runlock()
	if l.parent == nil {
		return ""
	}
	return l.parent.name
}

// Clones lists the names of the lvols whose parent is this snapshot, in the
// order they became its clones.
func (l *Lvol) Clones() []string {
	l.rlock()
	defer l.runlock()
	var cs []*Lvol
	for _, c := range l.store.lvols {
		if c.parent == l {
			cs = append(cs, c)
		}
	}
	slices.SortStableFunc(cs, func(a, b *Lvol) int { return cmpUint(a.cloneSeq, b.cloneSeq) })
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.name)
	}
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// AllocatedClusters is how many clusters the lvol owns.
func (l *Lvol) AllocatedClusters() uint64 {
	l.rlock()
	defer l.runlock()
	var n uint64
	for _, c := range l.clusters {
		if c != 0 {
			n++
		}
	}
	return n
}

// SizeBytes is the lvol's size.
func (l *Lvol) SizeBytes() uint64 {
	l.rlock()
	defer l.runlock()
	return uint64(len(l.clusters)) * l.store.clusterSize
}

// Deleted reports whether the lvol (or its store) was deleted.
func (l *Lvol) Deleted() bool {
	l.rlock()
	defer l.runlock()
	return l.deleted
}

// BlockSize implements Device.
func (l *Lvol) BlockSize() uint32 { return l.store.base.BlockSize() }

// NumBlocks implements Device.
func (l *Lvol) NumBlocks() uint64 {
	l.rlock()
	defer l.runlock()
	return uint64(len(l.clusters)) * l.store.clusterSize / uint64(l.BlockSize())
}

// segment is one piece of an lvol I/O: phys < 0 means it reads as zeros.
type segment struct {
	phys int64
	n    int64
}

// resolveLocked returns where the byte at lvol offset off lives: in this
// lvol, an ancestor, or nowhere (zeros).
func (l *Lvol) resolveLocked(off int64) int64 {
	cs := int64(l.store.clusterSize)
	idx := off / cs
	for v := l; v != nil; v = v.parent {
		if idx >= int64(len(v.clusters)) {
			return -1
		}
		if c := v.clusters[idx]; c != 0 {
			return int64(c)*cs + off%cs
		}
	}
	return -1
}

func (l *Lvol) checkLocked(n int, off int64) error {
	if l.deleted {
		return fmt.Errorf("%w: lvol %s was deleted", ErrNotFound, l.uuid)
	}
	return checkIO(l.BlockSize(), uint64(len(l.clusters))*l.store.clusterSize/uint64(l.BlockSize()), n, off)
}

// ReadAt implements Device.
func (l *Lvol) ReadAt(p []byte, off int64) (int, error) {
	l.rlock()
	if err := l.checkLocked(len(p), off); err != nil {
		l.runlock()
		return 0, err
	}
	segs := l.segmentsLocked(off, int64(len(p)))
	l.runlock()
	done := 0
	for _, sg := range segs {
		q := p[done : done+int(sg.n)]
		if sg.phys < 0 {
			clear(q)
		} else if _, err := l.store.base.ReadAt(q, sg.phys); err != nil {
			return done, fmt.Errorf("blockdev: lvol %s: %w", l.uuid, err)
		}
		done += int(sg.n)
	}
	return done, nil
}

func (l *Lvol) segmentsLocked(off, n int64) []segment {
	cs := int64(l.store.clusterSize)
	var segs []segment
	for n > 0 {
		k := min(cs-off%cs, n)
		segs = append(segs, segment{phys: l.resolveLocked(off), n: k})
		off += k
		n -= k
	}
	return segs
}

// WriteAt implements Device. Clusters written for the first time are
// allocated, filled with the parent's data (copy-on-write) or zeros, and
// the metadata is persisted before the data is written.
func (l *Lvol) WriteAt(p []byte, off int64) (int, error) {
	s := l.store
	s.mu.Lock()
	if err := l.checkLocked(len(p), off); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	if l.readOnly {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: lvol %s is read-only", ErrReadOnly, l.uuid)
	}
	err := l.allocateForWriteLocked(off, int64(len(p)))
	segs := l.segmentsLocked(off, int64(len(p)))
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	done := 0
	for _, sg := range segs {
		if _, err := s.base.WriteAt(p[done:done+int(sg.n)], sg.phys); err != nil {
			return done, fmt.Errorf("blockdev: lvol %s: %w", l.uuid, err)
		}
		done += int(sg.n)
	}
	return done, nil
}

func (l *Lvol) allocateForWriteLocked(off, n int64) error {
	s := l.store
	cs := int64(s.clusterSize)
	allocated := false
	var err error
	for idx := off / cs; idx*cs < off+n; idx++ {
		if l.clusters[idx] != 0 {
			continue
		}
		whole := off <= idx*cs && off+n >= (idx+1)*cs
		if err = l.allocClusterLocked(idx, !whole); err != nil {
			break
		}
		allocated = true
	}
	if allocated {
		if perr := s.persistLocked(); err == nil {
			err = perr
		}
	}
	return err
}

// allocClusterLocked gives logical cluster idx a physical cluster, filled
// from the ancestors (or zeros) when fill is set.
func (l *Lvol) allocClusterLocked(idx int64, fill bool) error {
	s := l.store
	c, err := s.allocLocked()
	if err != nil {
		return err
	}
	cs := int64(s.clusterSize)
	dst := int64(c) * cs
	if fill {
		src := int64(-1)
		if l.parent != nil {
			src = l.parent.resolveLocked(idx * cs)
		}
		if src < 0 {
			err = WriteZeroes(s.base, dst, cs)
		} else {
			err = copyRange(s.base, src, dst, cs)
		}
		if err != nil {
			s.releaseLocked(c)
			return fmt.Errorf("blockdev: lvol %s: fill cluster: %w", l.uuid, err)
		}
	}
	l.clusters[idx] = c
	return nil
}

func copyRange(d Device, src, dst, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := d.ReadAt(buf[:k], src); err != nil {
			return err
		}
		if _, err := d.WriteAt(buf[:k], dst); err != nil {
			return err
		}
		src, dst, n = src+k, dst+k, n-k
	}
	return nil
}

// allocLocked takes the lowest free cluster.
func (s *Lvstore) allocLocked() (uint32, error) {
	if s.free == 0 {
		return 0, fmt.Errorf("%w: lvstore %s has no free cluster", ErrNoSpace, s.name)
	}
	i := s.lowFree + uint64(slices.Index(s.used[s.lowFree:], false))
	s.used[i] = true
	s.free--
	s.lowFree = i + 1
	return uint32(i), nil
}

func (s *Lvstore) releaseLocked(c uint32) {
	if c != 0 && s.used[c] {
		s.used[c] = false
		s.free++
		s.lowFree = min(s.lowFree, uint64(c))
	}
}

// freeClustersLocked releases clusters without touching their bytes: as
// in SPDK, a later lvol created with clear method "none" sees them.
func (s *Lvstore) freeClustersLocked(cs []uint32) {
	for _, c := range cs {
		s.releaseLocked(c)
	}
}
