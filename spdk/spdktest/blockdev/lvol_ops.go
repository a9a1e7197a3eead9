package blockdev

import (
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// maxLvolClusters bounds a (thin) lvol's cluster map; larger maps would
// not fit in the metadata region anyway.
const maxLvolClusters = 1 << 24

func (s *Lvstore) clusters(sizeBytes uint64) uint64 {
	n := sizeBytes / s.clusterSize
	if sizeBytes%s.clusterSize != 0 {
		n++
	}
	return n
}

func (s *Lvstore) checkNewNameLocked(name, id string) error {
	if s.destroyed {
		return fmt.Errorf("%w: lvstore %s was deleted", ErrNotFound, s.name)
	}
	if name == "" || len(name) > maxLvsName {
		return fmt.Errorf("%w: lvol name %q", ErrInvalid, name)
	}
	for _, l := range s.lvols {
		if l.name == name || (id != "" && l.uuid == id) {
			return fmt.Errorf("%w: lvol %q in lvstore %s", ErrExists, name, s.name)
		}
	}
	return nil
}

// CreateLvol creates an lvol of sizeBytes rounded up to whole clusters. A
// thick lvol takes its clusters now and fails with ErrNoSpace when they are
// not free; they are zeroed unless clearMethod is "none" (then they may hold
// a deleted lvol's bytes). An empty uuid gets a random one.
func (s *Lvstore) CreateLvol(name, id string, sizeBytes uint64, thin bool, clearMethod string) (*Lvol, error) {
	if !validClear(clearMethod, true) {
		return nil, fmt.Errorf("%w: clear method %q", ErrInvalid, clearMethod)
	}
	clearMethod = cmp(clearMethod, ClearUnmap)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkNewNameLocked(name, id); err != nil {
		return nil, err
	}
	if id == "" {
		id = uuid.NewString()
	}
	n := s.clusters(sizeBytes)
	if n > maxLvolClusters {
		return nil, fmt.Errorf("%w: %d bytes", ErrNoSpace, sizeBytes)
	}
	if s.totalClusters == s.mdClusters {
		return nil, fmt.Errorf("%w: lvstore %s has no data clusters", ErrNoSpace, s.name)
	}
	l := &Lvol{store: s, name: name, uuid: id, thin: thin, clearMethod: clearMethod, clusters: make([]uint32, n)}
	if !thin {
		if err := l.reserveLocked(0, n); err != nil {
			return nil, err
		}
	}
	s.lvols = append(s.lvols, l)
	if err := s.persistLocked(); err != nil {
		s.lvols = s.lvols[:len(s.lvols)-1]
		s.freeClustersLocked(l.clusters)
		return nil, err
	}
	return l, nil
}

// reserveLocked allocates logical clusters [from, to) of a thick lvol,
// zeroing them unless its clear method is "none".
func (l *Lvol) reserveLocked(from, to uint64) error {
	s := l.store
	if to-from > s.free {
		return fmt.Errorf("%w: %d clusters wanted, %d free", ErrNoSpace, to-from, s.free)
	}
	for i := from; i < to; i++ {
		c, err := s.allocLocked()
		if err != nil {
			return err
		}
		l.clusters[i] = c
		if l.clearMethod == ClearNone {
			continue
		}
		if err := WriteZeroes(s.base, int64(c)*int64(s.clusterSize), int64(s.clusterSize)); err != nil {
			s.freeClustersLocked(l.clusters[from : i+1])
			clear(l.clusters[from : i+1])
			return fmt.Errorf("blockdev: clear lvol clusters: %w", err)
		}
	}
	return nil
}

func (s *Lvstore) mustFindLocked(name string) (*Lvol, error) {
	if l := s.findLocked(name); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("%w: lvol %q in lvstore %s", ErrNotFound, name, s.name)
}

// Delete deletes an lvol (by name or uuid). Its clusters are freed without
// being zeroed. A snapshot with two or more clones is ErrBusy; a snapshot
// with one clone is merged into it (the clone keeps the snapshot's data).
func (s *Lvstore) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.mustFindLocked(name)
	if err != nil {
		return err
	}
	var clones []*Lvol
	for _, c := range s.lvols {
		if c.parent == l {
			clones = append(clones, c)
		}
	}
	if len(clones) > 1 {
		return fmt.Errorf("%w: snapshot %s has %d clones", ErrBusy, l.name, len(clones))
	}
	if len(clones) == 1 {
		c := clones[0]
		for i, pc := range l.clusters {
			if i < len(c.clusters) && c.clusters[i] == 0 && pc != 0 {
				c.clusters[i] = pc
				l.clusters[i] = 0
			}
		}
		c.parent = l.parent
		c.cloneSeq = s.nextCloneSeqLocked()
	}
	s.freeClustersLocked(l.clusters)
	l.deleted = true
	s.lvols = slices.DeleteFunc(s.lvols, func(v *Lvol) bool { return v == l })
	return s.persistLocked()
}

// Resize changes an lvol's size, rounded up to whole clusters. Growing a
// thick lvol takes clusters now (ErrNoSpace when short); shrinking frees
// the clusters past the end. Snapshots cannot be resized.
func (s *Lvstore) Resize(name string, sizeBytes uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.mustFindLocked(name)
	if err != nil {
		return err
	}
	if l.readOnly {
		return fmt.Errorf("%w: %s cannot be resized", ErrReadOnly, l.name)
	}
	n, old := s.clusters(sizeBytes), uint64(len(l.clusters))
	if n > maxLvolClusters {
		return fmt.Errorf("%w: %d bytes", ErrNoSpace, sizeBytes)
	}
	switch {
	case n < old:
		s.freeClustersLocked(l.clusters[n:])
		l.clusters = slices.Clone(l.clusters[:n])
	case n > old:
		l.clusters = append(l.clusters, make([]uint32, n-old)...)
		if !l.thin {
			if err := l.reserveLocked(old, n); err != nil {
				l.clusters = l.clusters[:old]
				return err
			}
		}
	}
	return s.persistLocked()
}

// Snapshot freezes lvolName's data into a new read-only snapshot; the
// origin becomes a thin clone of it and copies clusters on write.
func (s *Lvstore) Snapshot(lvolName, snapName, snapUUID string) (*Lvol, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.mustFindLocked(lvolName)
	if err != nil {
		return nil, err
	}
	if err := s.checkNewNameLocked(snapName, snapUUID); err != nil {
		return nil, err
	}
	if l.readOnly {
		return nil, fmt.Errorf("%w: %s is read-only", ErrInvalid, l.name)
	}
	if snapUUID == "" {
		snapUUID = uuid.NewString()
	}
	snap := &Lvol{store: s, name: snapName, uuid: snapUUID, thin: l.thin, snapshot: true, readOnly: true,
		parent: l.parent, clearMethod: l.clearMethod, clusters: l.clusters, cloneSeq: s.nextCloneSeqLocked()}
	oldParent, oldThin, oldSeq := l.parent, l.thin, l.cloneSeq
	l.clusters, l.parent, l.thin, l.cloneSeq = make([]uint32, len(snap.clusters)), snap, true, s.nextCloneSeqLocked()
	s.lvols = append(s.lvols, snap)
	if err := s.persistLocked(); err != nil {
		s.lvols = s.lvols[:len(s.lvols)-1]
		l.clusters, l.parent, l.thin, l.cloneSeq = snap.clusters, oldParent, oldThin, oldSeq
		return nil, err
	}
	return snap, nil
}

// Clone creates a thin lvol whose unwritten clusters read from snapName.
// The source must be read-only (ErrInvalid otherwise); it becomes a
// snapshot.
func (s *Lvstore) Clone(snapName, cloneName, cloneUUID string) (*Lvol, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.mustFindLocked(snapName)
	if err != nil {
		return nil, err
	}
	if err := s.checkNewNameLocked(cloneName, cloneUUID); err != nil {
		return nil, err
	}
	if !snap.readOnly {
		return nil, fmt.Errorf("%w: %s is not read-only", ErrInvalid, snap.name)
	}
	if cloneUUID == "" {
		cloneUUID = uuid.NewString()
	}
	c := &Lvol{store: s, name: cloneName, uuid: cloneUUID, thin: true, parent: snap,
		clearMethod: snap.clearMethod, clusters: make([]uint32, len(snap.clusters)), cloneSeq: s.nextCloneSeqLocked()}
	s.lvols = append(s.lvols, c)
	wasSnap := snap.snapshot
	snap.snapshot = true
	if err := s.persistLocked(); err != nil {
		s.lvols = s.lvols[:len(s.lvols)-1]
		snap.snapshot = wasSnap
		return nil, err
	}
	return c, nil
}

// Rename renames an lvol. As in SPDK, the new name is not checked beyond
// clashes (it may even be empty); renaming to the current name is a no-op
// and a read-only lvol cannot be renamed (ErrReadOnly).
func (s *Lvstore) Rename(oldName, newName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.mustFindLocked(oldName)
	if err != nil {
		return err
	}
	if l.name == newName {
		return nil
	}
	for _, o := range s.lvols {
		if o.name == newName {
			return fmt.Errorf("%w: lvol %q in lvstore %s", ErrExists, newName, s.name)
		}
	}
	if l.readOnly {
		return fmt.Errorf("%w: %s cannot be renamed", ErrReadOnly, l.name)
	}
	return setPersisted(s, &l.name, newName)
}

// setPersisted sets *field to v and persists the store, restoring *field
// if that fails. s.mu is held.
func setPersisted[T any](s *Lvstore, field *T, v T) error {
	prev := *field
	*field = v
	if err := s.persistLocked(); err != nil {
		*field = prev
		return err
	}
	return nil
}

func (s *Lvstore) nextCloneSeqLocked() uint64 {
	s.cloneSeq++
	return s.cloneSeq
}

// SetReadOnly makes an lvol read-only for good (bdev_lvol_set_read_only):
// it can then be cloned, but no longer written, resized, renamed or
// snapshotted.
func (s *Lvstore) SetReadOnly(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.mustFindLocked(name)
	if err != nil {
		return err
	}
	if l.readOnly {
		return nil
	}
	return setPersisted(s, &l.readOnly, true)
}

// Inflate gives a thin lvol all its clusters, copied from its ancestors or
// zeroed, and detaches it from its parent: it is then thick. A thick lvol
// is left as it is. ErrNoSpace when the clusters are not free.
func (s *Lvstore) Inflate(name string) error { return s.inflate(name, true) }

// DecoupleParent copies the clusters the lvol's parent holds (and the lvol
// does not) into the lvol, which then hangs off the parent's parent. An
// lvol without parent is ErrInvalid.
func (s *Lvstore) DecoupleParent(name string) error { return s.inflate(name, false) }

func (s *Lvstore) inflate(name string, all bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.mustFindLocked(name)
	if err != nil {
		return err
	}
	if l.parent == nil && !all {
		return fmt.Errorf("%w: %s has no parent", ErrInvalid, l.name)
	}
	if !l.thin {
		return nil
	}
	if l.parent != nil && len(l.clusters) > len(l.parent.clusters) {
		// SPDK v24.01 (bs_cluster_needs_allocation) reads the parent's
		// cluster map past its end for the clusters a clone grew by: seen
		// failing with EINVAL or ENOSPC. Inflate a clone before growing it.
		return fmt.Errorf("%w: %s is larger than its parent %s", ErrInvalid, l.name, l.parent.name)
	}
	need := func(i int) bool {
		if l.clusters[i] != 0 {
			return false
		}
		if l.parent == nil || all {
			return all
		}
		return i < len(l.parent.clusters) && l.parent.clusters[i] != 0
	}
	var n uint64
	for i := range l.clusters {
		if need(i) {
			n++
		}
	}
	if n > s.free {
		return fmt.Errorf("%w: %d clusters wanted, %d free", ErrNoSpace, n, s.free)
	}
	for i := range l.clusters {
		if need(i) {
			if err := l.allocClusterLocked(int64(i), true); err != nil {
				return err
			}
		}
	}
	if all {
		l.parent, l.thin = nil, false
	} else {
		l.parent = l.parent.parent
		l.cloneSeq = s.nextCloneSeqLocked()
	}
	return s.persistLocked()
}

// SetName renames the store (bdev_lvol_rename_lvstore).
func (s *Lvstore) SetName(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return fmt.Errorf("%w: lvstore %s was deleted", ErrNotFound, s.name)
	}
	return setPersisted(s, &s.name, name)
}
