package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// pdResult is what a sync learnt and did for one PD.
type pdResult struct {
	spec        *agentpb.PdSpec
	bdev        string // the PD's bdev
	lvs         string // the PD's lvstore
	err         error
	needExamine bool // the lvstore was not loaded: examine before creating one
	// zeroed: this sync created the PD's bdev as a malloc bdev, which SPDK
	// allocates zeroed (spdk_zmalloc): its lvstore needs no clearing.
	zeroed bool
}

// syncPDs makes every PD's bdev and lvstore: bdevs first, then one examine
// round for the bdevs without their lvstore (bdev_examine each,
// bdev_wait_for_examine once, re-list), then lvstores that examine did not
// find are created.
func (r *dnRun) syncPDs(ctx context.Context) {
	pds := r.st.GetPds()
	r.n.parallel(len(pds), func(i int) {
		p := r.pds[pds[i].GetId()]
		p.lvs = nvmeof.PDLvstoreName(p.spec.GetId())
		if p.err = r.ensureBdev(ctx, p); p.err != nil {
			return
		}
		if ls, ok := r.snap.lvstores[p.lvs]; ok {
			p.err = checkLvstore(ls, p.bdev)
			return
		}
		p.needExamine = true
	})
	r.examine(ctx)
	r.n.parallel(len(pds), func(i int) {
		if p := r.pds[pds[i].GetId()]; p.err == nil && p.needExamine {
			p.err = r.ensureLvstore(ctx, p)
		}
	})
}

func checkLvstore(ls spdk.Lvstore, bdev string) error {
	if ls.BaseBdev != bdev {
		return fmt.Errorf("%w: lvstore %s is on bdev %s, not %s", errDNState, ls.Name, ls.BaseBdev, bdev)
	}
	return nil
}

// examine runs bdev_examine on every PD bdev whose lvstore is not loaded,
// waits for all examines to finish and re-lists, so that an lvstore that is
// on the disk is found, never created again.
func (r *dnRun) examine(ctx context.Context) {
	var todo []*pdResult
	for _, pd := range r.st.GetPds() {
		if p := r.pds[pd.GetId()]; p.err == nil && p.needExamine {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return
	}
	r.n.parallel(len(todo), func(i int) {
		p := todo[i]
		err := r.change("bdev_examine", []any{"pd", p.spec.GetId(), "bdev", p.bdev}, func() error {
			return r.n.c.BdevExamine(ctx, spdk.NameParams{Name: p.bdev})
		})
		// -17: examined before (by an earlier sync); -22: SPDK examines
		// every bdev by itself (bdev_auto_examine), so it already did.
		if err != nil && !errors.Is(err, spdk.ErrExists) && !errors.Is(err, spdk.ErrInvalidArgument) {
			p.err = err
		}
	})
	err := r.n.c.BdevWaitForExamine(ctx)
	if err == nil {
		err = r.n.relist(ctx, r.snap)
	}
	if err != nil {
		for _, p := range todo {
			if p.err == nil {
				p.err = fmt.Errorf("waiting for examine: %w", err)
			}
		}
	}
}

// ensureLvstore takes the lvstore examine found, or creates it when examine
// finished and found none.
func (r *dnRun) ensureLvstore(ctx context.Context, p *pdResult) error {
	if ls, ok := r.snap.lvstores[p.lvs]; ok {
		return checkLvstore(ls, p.bdev)
	}
	if other, ok := r.snap.lvstoreOn(p.bdev); ok {
		return fmt.Errorf("%w: bdev %s holds lvstore %s; not creating %s", errDNState, p.bdev, other.Name, p.lvs)
	}
	if b := r.snap.bdev(p.bdev); b != nil && b.Claimed {
		return fmt.Errorf("%w: bdev %s is claimed by another module; not creating lvstore %s", errDNState, p.bdev, p.lvs)
	}
	// Clearing writes the whole bdev (seconds per GiB on a busy node, where
	// the memory of a malloc PD is also touched for the first time), for
	// nothing on a malloc this sync made: it holds zeros only.
	clear := r.n.lvsClear
	if p.zeroed {
		clear = "none"
	}
	return r.change("bdev_lvol_create_lvstore", []any{"pd", p.spec.GetId(), "lvstore", p.lvs, "clear", clear}, func() error {
		_, err := r.n.c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreParams{
			BdevName: p.bdev, LvsName: p.lvs, ClusterSz: pdClusterBytes, ClearMethod: clear,
		})
		return err
	})
}

// ensureBdev makes the PD's bdev, or checks that the existing one is what
// the PD's configuration describes (a different one is reported, never
// replaced: it may hold data).
func (r *dnRun) ensureBdev(ctx context.Context, p *pdResult) error {
	id := p.spec.GetId()
	switch conf := p.spec.GetConf().(type) {
	case *agentpb.PdSpec_Malloc:
		p.bdev = nvmeof.PDBdevName(id)
		size := conf.Malloc.GetSizeBytes()
		if b := r.snap.bdev(p.bdev); b != nil {
			if b.ProductName != spdk.ProductMalloc || b.BlockSize != blockBytes || b.SizeBytes() != size {
				return bdevMismatch(p.bdev, "is a %q of %d x %d bytes, not a malloc of %d bytes", b.ProductName, b.NumBlocks, b.BlockSize, size)
			}
			return nil
		}
		err := r.change("bdev_malloc_create", []any{"pd", id, "bdev", p.bdev}, func() error {
			_, err := r.n.c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: p.bdev, BlockSize: blockBytes, NumBlocks: size / blockBytes})
			return err
		})
		p.zeroed = err == nil
		return err
	case *agentpb.PdSpec_Aio:
		p.bdev = nvmeof.PDBdevName(id)
		file := conf.Aio.GetFilename()
		real, fi, err := r.n.aio.resolve(file)
		if b := r.snap.bdev(p.bdev); b != nil {
			// Made by an earlier sync (which checked the file): on the
			// file as named, or as resolved then.
			if b.ProductName != spdk.ProductAIO || b.DriverSpecific.AIO == nil ||
				b.DriverSpecific.AIO.Filename != file && (err != nil || b.DriverSpecific.AIO.Filename != real) {
				return bdevMismatch(p.bdev, "is a %q, not an aio bdev on %s", b.ProductName, file)
			}
			return nil
		}
		if err != nil {
			return err
		}
		// Checked before the bdev exists: once SPDK has it, an lvstore
		// create would write over whatever the file held.
		if err := r.n.aio.check(id, file, real, fi, conf.Aio.GetForce()); err != nil {
			return err
		}
		if conf.Aio.GetForce() {
			r.n.log.Warn("aio PD created with force: its file may be overwritten", "pd", id, "file", real)
		}
		// The resolved path: a symlink changed after the check cannot
		// point SPDK elsewhere.
		return r.change("bdev_aio_create", []any{"pd", id, "bdev", p.bdev, "file", real}, func() error {
			_, err := r.n.c.BdevAioCreate(ctx, spdk.BdevAioCreateParams{Name: p.bdev, Filename: real, BlockSize: blockBytes})
			return err
		})
	case *agentpb.PdSpec_Nvme:
		return r.ensureNVMe(ctx, p, conf.Nvme.GetTraddr())
	}
	return fmt.Errorf("%w: PD %s has no configuration", ErrInvalidArgument, id)
}

// ensureNVMe attaches a local NVMe device (trtype PCIe) as the PD's
// controller; its namespace 1 is the PD's bdev.
func (r *dnRun) ensureNVMe(ctx context.Context, p *pdResult, traddr string) error {
	id := p.spec.GetId()
	ctrl := nvmeof.PDControllerName(id)
	p.bdev = nvmeof.NVMeBdevName(ctrl, 1)
	want := normPCIAddr(traddr)
	if c, ok := r.snap.ctrlrs[ctrl]; ok {
		for _, path := range c.Ctrlrs {
			if !strings.EqualFold(path.TRID.TRType, "pcie") || normPCIAddr(path.TRID.TRAddr) != want {
				return fmt.Errorf("%w: NVMe controller %s is attached to %s %s, not PCIe %s; not touching it",
					errDNState, ctrl, path.TRID.TRType, path.TRID.TRAddr, want)
			}
		}
		if r.snap.bdev(p.bdev) == nil {
			return fmt.Errorf("%w: NVMe controller %s has no namespace 1 (bdev %s)", errDNState, ctrl, p.bdev)
		}
		return nil
	}
	var names []string
	err := r.change("bdev_nvme_attach_controller", []any{"pd", id, "controller", ctrl, "traddr", traddr}, func() (err error) {
		names, err = r.n.c.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerParams{Name: ctrl, TRType: "PCIe", TRAddr: traddr})
		return err
	})
	if err == nil && !slices.Contains(names, p.bdev) {
		err = fmt.Errorf("%w: attaching PCIe %s gave bdevs %q, not %s", errDNState, traddr, names, p.bdev)
	}
	return err
}

// ensureTransport creates the NVMe-oF transport of the agent's listener.
func (r *dnRun) ensureTransport(ctx context.Context) error {
	want := strings.ToUpper(r.n.listener.TrType)
	for _, t := range r.snap.transports {
		if strings.EqualFold(t.TRType, want) {
			return nil
		}
	}
	err := r.change("nvmf_create_transport", []any{"trtype", want}, func() error {
		return r.n.c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportParams{TRType: want})
	})
	if errors.Is(err, spdk.ErrExists) {
		return nil
	}
	return err
}
