package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// deleteUnwanted deletes, in reverse dependency order, the owned disk-node
// objects the desired state no longer names: VD subsystems, VD lvols, the
// lvstores of removed PDs and their bdevs. An object is deleted only when
// everything above it was; objects without VDA's names are never touched,
// and an lvstore that still holds one is kept.
func (r *dnRun) deleteUnwanted(ctx context.Context) {
	blocked := r.deleteSubsystems(ctx)
	lvolFailed := r.deleteLvols(ctx, blocked)
	storeGone := r.deleteLvstores(ctx, lvolFailed)
	r.deletePDBdevs(ctx, storeGone)
}

// deleteSubsystems deletes unwanted VD subsystems and returns the VDs whose
// subsystem is still there.
func (r *dnRun) deleteSubsystems(ctx context.Context) map[string]bool {
	var nqns []nvmeof.NQN
	for nqn := range r.snap.subsystems {
		if id := ownedID(string(nqn), nvmeof.KindVDNQN); id != "" && r.wantVD[id] == nil {
			nqns = append(nqns, nqn)
		}
	}
	sort.Slice(nqns, func(i, j int) bool { return nqns[i] < nqns[j] })
	var mu sync.Mutex
	blocked := map[string]bool{}
	r.n.parallel(len(nqns), func(i int) {
		id := ownedID(string(nqns[i]), nvmeof.KindVDNQN)
		if err := r.deleteSubsystem(ctx, nqns[i], "VD not wanted"); err != nil {
			r.failedDelete(agentpb.Kind_KIND_VD, id, err)
			mu.Lock()
			blocked[id] = true
			mu.Unlock()
		}
	})
	return blocked
}

// deleteLvols deletes the unwanted VD lvols of PD lvstores (their clusters
// are cleared by SPDK with the lvol's clear method) and returns the
// lvstores in which one could not be deleted.
func (r *dnRun) deleteLvols(ctx context.Context, blocked map[string]bool) map[string]bool {
	var aliases []string
	for alias, lv := range r.snap.lvols {
		if ownedID(lv.Lvs.Name, nvmeof.KindPDLvstore) == "" {
			continue
		}
		if id := ownedID(lv.Name, nvmeof.KindVDLvol); id != "" && r.wantVD[id] == nil {
			aliases = append(aliases, alias)
		}
	}
	sort.Strings(aliases)
	var mu sync.Mutex
	failed := map[string]bool{}
	r.n.parallel(len(aliases), func(i int) {
		lv := r.snap.lvols[aliases[i]]
		id := ownedID(lv.Name, nvmeof.KindVDLvol)
		err := fmt.Errorf("%w: its subsystem could not be deleted", errDNState)
		if !blocked[id] {
			err = r.change("bdev_lvol_delete", []any{"vd", id, "lvol", aliases[i]}, func() error {
				return r.n.c.BdevLvolDelete(ctx, spdk.NameParams{Name: aliases[i]})
			})
		}
		if err != nil && !errors.Is(err, spdk.ErrNotFound) {
			r.failedDelete(agentpb.Kind_KIND_VD, id, fmt.Errorf("deleting lvol %s: %w", aliases[i], err))
			mu.Lock()
			failed[lv.Lvs.Name] = true
			mu.Unlock()
		}
	})
	return failed
}

// deleteLvstores deletes the lvstores of PDs the state no longer names,
// provided they hold nothing VDA does not own and their VD lvols are gone.
// It returns, by base bdev, whether the lvstore is gone (false: it is kept,
// and the failure was reported).
func (r *dnRun) deleteLvstores(ctx context.Context, lvolFailed map[string]bool) map[string]bool {
	var names []string
	for name := range r.snap.lvstores {
		if id := ownedID(name, nvmeof.KindPDLvstore); id != "" && r.wantPD[id] == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var mu sync.Mutex
	gone := map[string]bool{}
	r.n.parallel(len(names), func(i int) {
		ls := r.snap.lvstores[names[i]]
		id := ownedID(ls.Name, nvmeof.KindPDLvstore)
		err := r.lvstoreDeletable(ls, lvolFailed)
		if err == nil {
			err = r.change("bdev_lvol_delete_lvstore", []any{"pd", id, "lvstore", ls.Name}, func() error {
				return r.n.c.BdevLvolDeleteLvstore(ctx, spdk.LvstoreSelector{LvsName: ls.Name})
			})
		}
		ok := err == nil || errors.Is(err, spdk.ErrNotFound)
		if !ok {
			r.failedDelete(agentpb.Kind_KIND_PD, id, fmt.Errorf("deleting lvstore %s: %w", ls.Name, err))
		}
		mu.Lock()
		gone[ls.BaseBdev] = ok
		mu.Unlock()
	})
	return gone
}

func (r *dnRun) lvstoreDeletable(ls spdk.Lvstore, lvolFailed map[string]bool) error {
	if lvolFailed[ls.Name] {
		return fmt.Errorf("%w: some of its VD lvols could not be deleted", errDNState)
	}
	for _, lv := range r.snap.lvols {
		if lv.Lvs.Name != ls.Name {
			continue
		}
		if id := ownedID(lv.Name, nvmeof.KindVDLvol); id == "" || r.wantVD[id] != nil {
			return fmt.Errorf("%w: it holds lvol %s, which is not an unwanted VD's; keeping it", errDNState, lv.Name)
		}
	}
	return nil
}

// pdBdevDeletion is one unwanted PD bdev and how to delete it.
type pdBdevDeletion struct {
	pdID, bdev string
	del        func(ctx context.Context) error
	aioFile    string // an aio PD's file, blanked once its lvstore and bdev are gone
}

// deletePDBdevs deletes the bdevs (malloc, aio) and NVMe controllers of PDs
// the state no longer names, unless something VDA did not make uses them.
func (r *dnRun) deletePDBdevs(ctx context.Context, storeGone map[string]bool) {
	var todo []pdBdevDeletion
	for name, b := range r.snap.bdevs {
		id := ownedID(name, nvmeof.KindPDBdev)
		if id == "" || b.Name != name || r.wantPD[id] != nil {
			continue
		}
		var del func(context.Context) error
		switch b.ProductName {
		case spdk.ProductMalloc:
			del = func(ctx context.Context) error { return r.n.c.BdevMallocDelete(ctx, spdk.NameParams{Name: name}) }
		case spdk.ProductAIO:
			del = func(ctx context.Context) error { return r.n.c.BdevAioDelete(ctx, spdk.NameParams{Name: name}) }
		default:
			r.failedDelete(agentpb.Kind_KIND_PD, id, fmt.Errorf("%w: bdev %s is a %q, which VDA does not make", errDNState, name, b.ProductName))
			continue
		}
		d := pdBdevDeletion{pdID: id, bdev: name, del: del}
		if b.ProductName == spdk.ProductAIO && b.DriverSpecific.AIO != nil {
			d.aioFile = b.DriverSpecific.AIO.Filename
		}
		todo = append(todo, d)
	}
	for name := range r.snap.ctrlrs {
		if id := ownedID(name, nvmeof.KindPDController); id != "" && r.wantPD[id] == nil {
			todo = append(todo, pdBdevDeletion{pdID: id, bdev: nvmeof.NVMeBdevName(name, 1), del: func(ctx context.Context) error {
				return r.n.c.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerParams{Name: name})
			}})
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].bdev < todo[j].bdev })
	r.n.parallel(len(todo), func(i int) {
		d := todo[i]
		gone, hadStore := storeGone[d.bdev]
		if hadStore && !gone {
			return // the lvstore on it is kept (reported already)
		}
		var err error
		if b := r.snap.bdev(d.bdev); b != nil && b.Claimed && !gone {
			err = fmt.Errorf("%w: bdev %s is still claimed", errDNState, d.bdev)
		} else {
			err = r.change("delete PD bdev", []any{"pd", d.pdID, "bdev", d.bdev}, func() error { return d.del(ctx) })
		}
		if err != nil && !errors.Is(err, spdk.ErrNotFound) {
			r.failedDelete(agentpb.Kind_KIND_PD, d.pdID, fmt.Errorf("deleting bdev %s: %w", d.bdev, err))
			return
		}
		if gone && d.aioFile != "" {
			// bdev_lvol_delete_lvstore zeroes only the superblock: the rest
			// of the metadata would make the file look like someone else's
			// data to the next PD created on it (see aioPolicy.check).
			if err := r.n.aio.blank(d.aioFile); err != nil {
				r.n.log.Warn("cannot blank a deleted aio PD's metadata", "pd", d.pdID, "file", d.aioFile, "error", err)
			}
		}
	})
}
