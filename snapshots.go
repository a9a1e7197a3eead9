package vda

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// SnapshotSpec is what creates a snapshot of a DA's volume.
type SnapshotSpec struct {
	DAName      string
	Name        string
	Description string
}

func snapWhat(da, snap string) string { return fmt.Sprintf("snapshot %q of disk array %q", snap, da) }

func validateSnapNames(da, snap string, isNew bool) error {
	if err := ValidateName(nvmeof.ResourceDA, da); err != nil {
		return err
	}
	if isNew {
		return ValidateNewName(nvmeof.ResourceSnapshot, snap)
	}
	return ValidateName(nvmeof.ResourceSnapshot, snap)
}

func snapStatus(v *Snapshot) *Status { return &v.Status }

// CreateSnapshot asks for a crash-consistent snapshot of the DA's volume.
// The DA's primary takes it (bdev_lvol_snapshot) once the monitor pushed
// it; the snapshot is Ready when the primary reported it taken. It lives
// in the DA's lvstore, thin: see the README on what that costs in
// physical space.
func (c *Cluster) CreateSnapshot(ctx context.Context, spec SnapshotSpec) (Snapshot, error) {
	if err := validateSnapNames(spec.DAName, spec.Name, true); err != nil {
		return Snapshot{}, err
	}
	if err := ValidateDescription(spec.Description); err != nil {
		return Snapshot{}, err
	}
	now := time.Now().UTC()
	var snap Snapshot
	err := c.update(ctx, func(tx *store.Tx) error {
		da, err := txGet[DiskArray](tx, KeyDA(spec.DAName), daWhat(spec.DAName))
		if err != nil {
			return err
		}
		key := KeySnap(spec.DAName, spec.Name)
		old, found, err := txLookup[Snapshot](tx, key)
		if err != nil {
			return err
		}
		if found {
			snap = old
			return sameSpec(snapWhat(spec.DAName, spec.Name), field{"description", old.Description, spec.Description})
		}
		snap = Snapshot{ID: nvmeof.NewID(), Name: spec.Name, DAName: da.Name, DAID: da.ID,
			Description: spec.Description, SizeBytes: da.SizeBytes, CreatedAt: now}
		da.SnapCount++
		if err := txPut(tx, KeyDA(da.Name), da); err != nil {
			return err
		}
		return txPut(tx, key, snap)
	})
	if err != nil {
		return Snapshot{}, err
	}
	snap.Status, err = c.readStatus(ctx, KeySnap(spec.DAName, spec.Name))
	return snap, err
}

// GetSnapshot returns a snapshot with its status.
func (c *Cluster) GetSnapshot(ctx context.Context, da, name string) (Snapshot, error) {
	if err := validateSnapNames(da, name, false); err != nil {
		return Snapshot{}, err
	}
	return getJSON(ctx, c, KeySnap(da, name), snapWhat(da, name), snapStatus)
}

// ListSnapshots returns one page of the snapshots of DA da, or of every DA
// if da is "".
func (c *Cluster) ListSnapshots(ctx context.Context, da string, page Page) ([]Snapshot, string, error) {
	return listUnder(ctx, c, children{PrefixSnap, nvmeof.ResourceDA, nvmeof.ResourceSnapshot, KeyDA, daWhat, KeySnaps}, da, page, snapStatus)
}

// WaitSnapshot watches a snapshot until until returns true (see
// WaitDiskArray).
func (c *Cluster) WaitSnapshot(ctx context.Context, da, name string, until func(Snapshot, error) bool) (Snapshot, error) {
	if err := validateSnapNames(da, name, false); err != nil {
		return Snapshot{}, err
	}
	return waitFor(ctx, c, KeySnap(da, name), func(ctx context.Context) (Snapshot, error) { return c.GetSnapshot(ctx, da, name) },
		until, func(s Snapshot) string {
			return fmt.Sprintf("%s: %s %s", snapWhat(da, name), s.Status.Health, s.Status.ErrorMsg)
		})
}

// DeleteSnapshot removes a snapshot that no exporter exports and no clone
// depends on (a clone inflated and reported so does not); the DA's
// primary then deletes its lvol.
func (c *Cluster) DeleteSnapshot(ctx context.Context, da, name string) error {
	if err := validateSnapNames(da, name, false); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		snap, err := txGet[Snapshot](tx, KeySnap(da, name), snapWhat(da, name))
		if err != nil {
			return err
		}
		if snap.ExpName != "" {
			return fmt.Errorf("%w: %s is exported by exporter %q: delete the exporter first",
				ErrFailedPrecondition, snapWhat(da, name), snap.ExpName)
		}
		if snap.CloneCount > 0 {
			deps, err := txDependentClones(tx, snap)
			if err != nil {
				return err
			}
			if len(deps) > 0 {
				return fmt.Errorf("%w: clones %s of %s depend on it: delete them or inflate them (vda clone modify --inflate) first",
					ErrFailedPrecondition, strings.Join(deps, ", "), snapWhat(da, name))
			}
		}
		arr, err := txGet[DiskArray](tx, KeyDA(da), daWhat(da))
		if err != nil {
			return err
		}
		arr.SnapCount = max(0, arr.SnapCount-1)
		txDelete(tx, KeySnap(da, name))
		return txPut(tx, KeyDA(da), arr)
	})
}

// txDependentClones names the clones of snap that still depend on it: all
// but those asked to inflate whose primary reported it done. The clone
// count on the snapshot guards against a concurrent create (it writes the
// snapshot's key); a status read here is guarded like any key read.
func txDependentClones(tx *store.Tx, snap Snapshot) ([]string, error) {
	kvs, err := tx.List(KeyClones(snap.DAName))
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, kv := range kvs {
		cl, err := txGet[Clone](tx, kv.Key, kv.Key)
		if err != nil {
			return nil, err
		}
		if cl.SnapID != snap.ID {
			continue
		}
		if cl.Status, err = txStatus(tx, kv.Key); err != nil {
			return nil, err
		}
		if !cl.Inflated() {
			deps = append(deps, fmt.Sprintf("%q", cl.Name))
		}
	}
	if len(deps) == 0 && len(kvs) == 0 && snap.CloneCount > 0 {
		// The count says clones exist, the listing shows none: refuse
		// rather than delete what a clone may need.
		return []string{"(counted but not listed)"}, nil
	}
	return deps, nil
}

// txSnapshotsAndClones names the snapshots and clones of DA da, for the
// message of a refused DA delete.
func txSnapshotsAndClones(tx *store.Tx, da DiskArray) error {
	var names []string
	for _, p := range []struct{ kind, prefix string }{{"snapshot", KeySnaps(da.Name)}, {"clone", KeyClones(da.Name)}} {
		kvs, err := tx.List(p.prefix)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			names = append(names, fmt.Sprintf("%s %q", p.kind, strings.TrimPrefix(kv.Key, p.prefix)))
		}
	}
	if len(names) == 0 {
		names = []string{fmt.Sprintf("%d snapshots and %d clones", da.SnapCount, da.CloneCount)}
	}
	return fmt.Errorf("%w: %s still has %s: delete them first", ErrFailedPrecondition, daWhat(da.Name), strings.Join(names, ", "))
}

// txBindVolume resolves the snapshot or clone an exporter being created
// exports, refusing a missing one or one another exporter exports
// already, and records the exporter on it. With neither name it does
// nothing (the DA's volume).
func txBindVolume(tx *store.Tx, exp *Exporter) error {
	switch {
	case exp.SnapName != "" && exp.CloneName != "":
		return fmt.Errorf("%w: an exporter exports a snapshot or a clone, not both (snap_name %q, clone_name %q)",
			ErrInvalidArgument, exp.SnapName, exp.CloneName)
	case exp.SnapName != "":
		key := KeySnap(exp.DAName, exp.SnapName)
		snap, err := txGet[Snapshot](tx, key, snapWhat(exp.DAName, exp.SnapName))
		if err != nil {
			return err
		}
		if snap.ExpName != "" && snap.ExpName != exp.Name {
			return fmt.Errorf("%w: %s is exported by exporter %q already: add the host to it (vda exp modify --add-host-nqn)",
				ErrFailedPrecondition, snapWhat(exp.DAName, exp.SnapName), snap.ExpName)
		}
		exp.SnapID, snap.ExpName = snap.ID, exp.Name
		return txPut(tx, key, snap)
	case exp.CloneName != "":
		key := KeyClone(exp.DAName, exp.CloneName)
		cl, err := txGet[Clone](tx, key, cloneWhat(exp.DAName, exp.CloneName))
		if err != nil {
			return err
		}
		if cl.ExpName != "" && cl.ExpName != exp.Name {
			return fmt.Errorf("%w: %s is exported by exporter %q already: add the host to it (vda exp modify --add-host-nqn)",
				ErrFailedPrecondition, cloneWhat(exp.DAName, exp.CloneName), cl.ExpName)
		}
		exp.CloneID, cl.ExpName = cl.ID, exp.Name
		return txPut(tx, key, cl)
	}
	return nil
}

// txUnbindVolume forgets exporter exp on the snapshot or clone it exports
// (being deleted). A snapshot or clone that is gone, or names another
// exporter, is left alone.
func txUnbindVolume(tx *store.Tx, exp Exporter) error {
	switch {
	case exp.SnapName != "":
		key := KeySnap(exp.DAName, exp.SnapName)
		snap, found, err := txLookup[Snapshot](tx, key)
		if err != nil || !found || snap.ExpName != exp.Name {
			return err
		}
		snap.ExpName = ""
		return txPut(tx, key, snap)
	case exp.CloneName != "":
		key := KeyClone(exp.DAName, exp.CloneName)
		cl, found, err := txLookup[Clone](tx, key)
		if err != nil || !found || cl.ExpName != exp.Name {
			return err
		}
		cl.ExpName = ""
		return txPut(tx, key, cl)
	}
	return nil
}

// validateExpVolume checks the optional snapshot and clone names of an
// exporter being created.
func validateExpVolume(snap, clone string) error {
	if snap != "" {
		if err := ValidateName(nvmeof.ResourceSnapshot, snap); err != nil {
			return err
		}
	}
	if clone != "" {
		if err := ValidateName(nvmeof.ResourceClone, clone); err != nil {
			return err
		}
	}
	if snap != "" && clone != "" {
		return fmt.Errorf("%w: an exporter exports a snapshot or a clone, not both (snap_name %q, clone_name %q)",
			ErrInvalidArgument, snap, clone)
	}
	return nil
}
