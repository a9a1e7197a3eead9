package vda

import (
	"context"
	"fmt"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// CloneSpec is what creates a clone of a snapshot.
type CloneSpec struct {
	DAName      string
	Name        string
	SnapName    string
	Description string
}

// CloneUpdate changes a clone; nil and false fields are left alone.
type CloneUpdate struct {
	Description *string
	// SizeBytes grows the clone (bdev_lvol_resize): a multiple of the DA's
	// cluster size, at least the clone's size, at most the DA's physical
	// size. Shrinking is refused.
	SizeBytes *uint64
	// Inflate detaches the clone from its snapshot (bdev_lvol_inflate);
	// it cannot be undone, so false leaves it as it is.
	Inflate bool
}

func cloneWhat(da, cl string) string { return fmt.Sprintf("clone %q of disk array %q", cl, da) }

func validateCloneNames(da, cl string, isNew bool) error {
	if err := ValidateName(nvmeof.ResourceDA, da); err != nil {
		return err
	}
	if isNew {
		return ValidateNewName(nvmeof.ResourceClone, cl)
	}
	return ValidateName(nvmeof.ResourceClone, cl)
}

func cloneStatus(v *Clone) *Status { return &v.Status }

// CreateClone asks for a writable clone of a snapshot, thin in the DA's
// lvstore (bdev_lvol_clone on the DA's primary). The snapshot need not be
// Ready yet: the primary makes the clone once it holds the snapshot.
func (c *Cluster) CreateClone(ctx context.Context, spec CloneSpec) (Clone, error) {
	if err := validateCloneNames(spec.DAName, spec.Name, true); err != nil {
		return Clone{}, err
	}
	if err := ValidateName(nvmeof.ResourceSnapshot, spec.SnapName); err != nil {
		return Clone{}, err
	}
	if err := ValidateDescription(spec.Description); err != nil {
		return Clone{}, err
	}
	var cl Clone
	err := c.update(ctx, func(tx *store.Tx) error {
		da, err := txGet[DiskArray](tx, KeyDA(spec.DAName), daWhat(spec.DAName))
		if err != nil {
			return err
		}
		key := KeyClone(spec.DAName, spec.Name)
		old, found, err := txLookup[Clone](tx, key)
		if err != nil {
			return err
		}
		if found {
			cl = old
			return sameSpec(cloneWhat(spec.DAName, spec.Name), field{"snap_name", old.SnapName, spec.SnapName},
				field{"description", old.Description, spec.Description})
		}
		snapKey := KeySnap(spec.DAName, spec.SnapName)
		snap, err := txGet[Snapshot](tx, snapKey, snapWhat(spec.DAName, spec.SnapName))
		if err != nil {
			return err
		}
		cl = Clone{ID: nvmeof.NewID(), Name: spec.Name, DAName: da.Name, DAID: da.ID, SnapName: snap.Name,
			SnapID: snap.ID, Description: spec.Description, SizeBytes: snap.SizeBytes, SnapSizeBytes: snap.SizeBytes}
		snap.CloneCount++
		da.CloneCount++
		if err := txPut(tx, snapKey, snap); err != nil {
			return err
		}
		if err := txPut(tx, KeyDA(da.Name), da); err != nil {
			return err
		}
		return txPut(tx, key, cl)
	})
	if err != nil {
		return Clone{}, err
	}
	cl.Status, err = c.readStatus(ctx, KeyClone(spec.DAName, spec.Name))
	return cl, err
}

// GetClone returns a clone with its status.
func (c *Cluster) GetClone(ctx context.Context, da, name string) (Clone, error) {
	if err := validateCloneNames(da, name, false); err != nil {
		return Clone{}, err
	}
	return getJSON(ctx, c, KeyClone(da, name), cloneWhat(da, name), cloneStatus)
}

// ListClones returns one page of the clones of DA da, or of every DA if da
// is "".
func (c *Cluster) ListClones(ctx context.Context, da string, page Page) ([]Clone, string, error) {
	return listUnder(ctx, c, children{PrefixClone, nvmeof.ResourceDA, nvmeof.ResourceClone, KeyDA, daWhat, KeyClones}, da, page, cloneStatus)
}

// WaitClone watches a clone until until returns true (see WaitDiskArray).
func (c *Cluster) WaitClone(ctx context.Context, da, name string, until func(Clone, error) bool) (Clone, error) {
	if err := validateCloneNames(da, name, false); err != nil {
		return Clone{}, err
	}
	return waitFor(ctx, c, KeyClone(da, name), func(ctx context.Context) (Clone, error) { return c.GetClone(ctx, da, name) },
		until, func(cl Clone) string {
			return fmt.Sprintf("%s: %s %s", cloneWhat(da, name), cl.Status.Health, cl.Status.ErrorMsg)
		})
}

// ModifyClone changes a clone's description, grows it, or asks for it to
// be inflated (the primary inflates before it grows, so both may come in
// one update; a clone grown earlier cannot be inflated any more). A change the primary must carry out clears the clone's
// status, so Ready and Inflated wait for the primary's next report.
func (c *Cluster) ModifyClone(ctx context.Context, da, name string, u CloneUpdate) (Clone, error) {
	if err := validateCloneNames(da, name, false); err != nil {
		return Clone{}, err
	}
	if u.Description != nil {
		if err := ValidateDescription(*u.Description); err != nil {
			return Clone{}, err
		}
	}
	var cl Clone
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		key := KeyClone(da, name)
		if cl, err = txGet[Clone](tx, key, cloneWhat(da, name)); err != nil {
			return err
		}
		orig, work := cl, false
		if u.SizeBytes != nil && *u.SizeBytes != cl.SizeBytes {
			arr, err := txGet[DiskArray](tx, KeyDA(da), daWhat(da))
			if err != nil {
				return err
			}
			if err := checkCloneSize(cl, arr, *u.SizeBytes); err != nil {
				return err
			}
			cl.SizeBytes, work = *u.SizeBytes, true
		}
		if u.Inflate && !cl.Inflate {
			if was := orig; was.SizeBytes > was.SnapSizeBytes {
				return fmt.Errorf("%w: %s was grown past its snapshot's size (%d > %d bytes) and SPDK v24.01 cannot inflate it "+
					"(bdev_lvol_inflate fails): inflate a clone before or while growing it", ErrFailedPrecondition,
					cloneWhat(da, name), was.SizeBytes, was.SnapSizeBytes)
			}
			cl.Inflate, work = true, true
		}
		if u.Description != nil {
			cl.Description = *u.Description
		}
		if work {
			tx.Delete(KeyStatus(key))
		}
		return txPut(tx, key, cl)
	})
	if err != nil {
		return Clone{}, err
	}
	cl.Status, err = c.readStatus(ctx, KeyClone(da, name))
	return cl, err
}

// checkCloneSize refuses a new clone size the DA cannot hold: not a whole
// number of the DA lvstore's clusters (SPDK would round it up), smaller
// than the clone (shrinking would lose data), or larger than the DA's
// physical size.
func checkCloneSize(cl Clone, da DiskArray, size uint64) error {
	switch {
	case size < cl.SizeBytes:
		return fmt.Errorf("%w: %s holds %d bytes: a clone grows, it never shrinks (asked %d)",
			ErrInvalidArgument, cloneWhat(da.Name, cl.Name), cl.SizeBytes, size)
	case da.ClusterBytes == 0 || size%da.ClusterBytes != 0:
		return fmt.Errorf("%w: size %d is not a multiple of the disk array's cluster size %d",
			ErrInvalidArgument, size, da.ClusterBytes)
	case size > da.PhysicalSizeBytes:
		return fmt.Errorf("%w: size %d is more than the physical size %d of %s",
			ErrInvalidArgument, size, da.PhysicalSizeBytes, daWhat(da.Name))
	}
	return nil
}

// DeleteClone removes a clone no exporter exports; the DA's primary then
// deletes its lvol.
func (c *Cluster) DeleteClone(ctx context.Context, da, name string) error {
	if err := validateCloneNames(da, name, false); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		cl, err := txGet[Clone](tx, KeyClone(da, name), cloneWhat(da, name))
		if err != nil {
			return err
		}
		if cl.ExpName != "" {
			return fmt.Errorf("%w: %s is exported by exporter %q: delete the exporter first",
				ErrFailedPrecondition, cloneWhat(da, name), cl.ExpName)
		}
		snapKey := KeySnap(da, cl.SnapName)
		snap, found, err := txLookup[Snapshot](tx, snapKey)
		if err != nil {
			return err
		}
		if found && snap.ID == cl.SnapID {
			snap.CloneCount = max(0, snap.CloneCount-1)
			if err := txPut(tx, snapKey, snap); err != nil {
				return err
			}
		}
		arr, err := txGet[DiskArray](tx, KeyDA(da), daWhat(da))
		if err != nil {
			return err
		}
		arr.CloneCount = max(0, arr.CloneCount-1)
		txDelete(tx, KeyClone(da, name))
		return txPut(tx, KeyDA(da), arr)
	})
}
