package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// DiskArraySpec is what creates a DA.
type DiskArraySpec struct {
	Name              string
	Description       string
	CntlrCount        int
	SizeBytes         uint64 // --da-size: the exported namespace size, exactly
	PhysicalSizeBytes uint64 // --physical-size; 0 means SizeBytes
	Conf              DAConf
}

// DiskArrayUpdate changes a DA; nil fields are left alone.
type DiskArrayUpdate struct {
	Description *string
}

// errStale: a placement candidate changed between the List and the Txn.
var errStale = errors.New("vda: placement candidates changed")

func daWhat(name string) string { return fmt.Sprintf("disk array %q", name) }

// candidates reads every DN, PD and CN with its status (capacity, health)
// and the revision each was read at.
func (c *Cluster) candidates(ctx context.Context) (Candidates, map[string]int64, error) {
	revs := map[string]int64{}
	cands := Candidates{DNs: map[string]DiskNode{}}
	load := func(prefix string, fn func(kv store.KV) error) error {
		res, err := c.s.List(ctx, prefix, store.ListOptions{})
		if err != nil {
			return err
		}
		for _, kv := range res.KVs {
			revs[kv.Key] = kv.ModRevision
			if err := fn(kv); err != nil {
				return fmt.Errorf("vda: decode %s: %w", kv.Key, err)
			}
		}
		return nil
	}
	// Statuses first: each spec takes the status read before it.
	statuses := map[string]Status{}
	loadStatus := func(prefix string) error {
		return load(KeyStatus(prefix), func(kv store.KV) error {
			var st Status
			err := json.Unmarshal(kv.Value, &st)
			statuses[kv.Key] = st
			return err
		})
	}
	err := errors.Join(
		loadStatus(PrefixDN),
		load(PrefixDN, func(kv store.KV) error {
			var dn DiskNode
			err := json.Unmarshal(kv.Value, &dn)
			dn.Status = statuses[KeyStatus(kv.Key)]
			cands.DNs[dn.Name] = dn
			return err
		}),
		loadStatus(PrefixPD),
		load(PrefixPD, func(kv store.KV) error {
			var pd PhysicalDisk
			err := json.Unmarshal(kv.Value, &pd)
			pd.Status = statuses[KeyStatus(kv.Key)]
			cands.PDs = append(cands.PDs, pd)
			return err
		}),
		loadStatus(PrefixCN),
		load(PrefixCN, func(kv store.KV) error {
			var cn ControllerNode
			err := json.Unmarshal(kv.Value, &cn)
			cn.Status = statuses[KeyStatus(kv.Key)]
			cands.CNs = append(cands.CNs, cn)
			return err
		}),
	)
	return cands, revs, err
}

// txRead reads key in tx, so the commit is guarded by the revision read,
// and reports whether the key changed since the candidates were read at
// revs. It fails with errStale if the key is gone.
func txRead[T any](tx *store.Tx, key string, revs map[string]int64) (T, bool, error) {
	var v T
	kv, err := tx.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return v, true, errStale
	}
	if err != nil {
		return v, false, err
	}
	return v, kv.ModRevision != revs[key], json.Unmarshal(kv.Value, &v)
}

func (spec *DiskArraySpec) validate() (DALayout, error) {
	if err := ValidateNewName(nvmeof.ResourceDA, spec.Name); err != nil {
		return DALayout{}, err
	}
	if err := ValidateDescription(spec.Description); err != nil {
		return DALayout{}, err
	}
	if err := ValidateCntlrCount(spec.CntlrCount); err != nil {
		return DALayout{}, err
	}
	if spec.PhysicalSizeBytes == 0 {
		spec.PhysicalSizeBytes = spec.SizeBytes
	}
	return Layout(spec.SizeBytes, spec.PhysicalSizeBytes, spec.Conf.StripeCount, spec.Conf.StripeSizeKB)
}

// CreateDiskArray places and creates a DA in one store transaction: it
// reads the candidates, asks the Placer, and commits the DA together with
// the capacity it reserves (PD bytes and VD counts, CN controller counts),
// guarded by the revisions of every node and disk it chose as the
// transaction read them. If a chosen DN or PD changed since the candidates
// were read, it starts over on fresh data; if only a chosen CN's
// controller count changed, the transaction retries with the same
// placement. No lock is taken.
func (c *Cluster) CreateDiskArray(ctx context.Context, spec DiskArraySpec) (DiskArray, error) {
	layout, err := spec.validate()
	if err != nil {
		return DiskArray{}, err
	}
	req := PlacementRequest{StripeCount: spec.Conf.StripeCount, CntlrCount: spec.CntlrCount, VDSizeBytes: layout.VDSizeBytes}
	for attempt := 0; attempt < c.attempts; attempt++ {
		if old, err := getJSON(ctx, c, KeyDA(spec.Name), daWhat(spec.Name), daStatus); err == nil {
			if err := spec.same(old); err != nil {
				return DiskArray{}, err
			}
			return old, nil
		} else if !errors.Is(err, ErrNotFound) {
			return DiskArray{}, err
		}
		cands, revs, err := c.candidates(ctx)
		if err != nil {
			return DiskArray{}, err
		}
		req.Name, req.Attempt = spec.Name, attempt
		p, err := c.placer.Place(req, cands)
		if err != nil {
			return DiskArray{}, err
		}
		if len(p.PDs) != req.StripeCount || len(p.CNs) != req.CntlrCount {
			return DiskArray{}, fmt.Errorf("vda: placer returned %d PDs and %d CNs", len(p.PDs), len(p.CNs))
		}
		var da DiskArray
		err = c.update(ctx, func(tx *store.Tx) error {
			var cerr error
			da, cerr = c.commitDA(tx, spec, layout, p, revs)
			return cerr
		})
		if errors.Is(err, errStale) {
			c.log.Debug("placement candidates changed, retrying", "da", spec.Name, "attempt", attempt)
			continue
		}
		return da, err
	}
	return DiskArray{}, fmt.Errorf("%w: placement of %s kept conflicting", store.ErrConflict, daWhat(spec.Name))
}

// same reports whether an existing DA is what spec (validated) asks for.
func (spec DiskArraySpec) same(da DiskArray) error {
	return sameSpec(daWhat(spec.Name), field{"description", da.Description, spec.Description},
		field{"cntlr_cnt", da.CntlrCount, spec.CntlrCount}, field{"da_size", da.SizeBytes, spec.SizeBytes},
		field{"physical_size", da.PhysicalSizeBytes, spec.PhysicalSizeBytes},
		field{"stripe_count", da.StripeCount, spec.Conf.StripeCount}, field{"stripe_size_kb", da.StripeSizeKB, spec.Conf.StripeSizeKB})
}

func (c *Cluster) commitDA(tx *store.Tx, spec DiskArraySpec, l DALayout, p Placement, revs map[string]int64) (DiskArray, error) {
	if old, found, err := txLookup[DiskArray](tx, KeyDA(spec.Name)); err != nil || found {
		if err == nil {
			err = spec.same(old) // created meanwhile (by a retry of this request?)
		}
		return old, err
	}
	da := DiskArray{ID: nvmeof.NewID(), Name: spec.Name, Description: spec.Description,
		SizeBytes: spec.SizeBytes, PhysicalSizeBytes: spec.PhysicalSizeBytes,
		StripeCount: spec.Conf.StripeCount, StripeSizeKB: spec.Conf.StripeSizeKB, CntlrCount: spec.CntlrCount,
		ClusterBytes: l.ClusterBytes, VDSizeBytes: l.VDSizeBytes, Epoch: 1}
	// The placement was made on the candidates as read before this
	// transaction. A PD or DN that changed since means placing again (a
	// placement on fresh data keeps the disks evenly filled, so a DA that
	// fits is never refused for fragmentation); a CN whose controller count
	// changed is still fine, as CNs have no capacity to exhaust, so racing
	// creates that pick the same least-loaded CN only retry the
	// transaction. What the transaction reads, it guards at commit.
	seen := map[string]bool{}
	for i, cand := range p.PDs {
		key := KeyPD(cand.DNName, cand.Name)
		pd, pdChanged, err := txRead[PhysicalDisk](tx, key, revs)
		if err != nil {
			return da, err
		}
		dn, dnChanged, err := txRead[DiskNode](tx, KeyDN(pd.DNName), revs)
		if err != nil {
			return da, err
		}
		if pdChanged || dnChanged {
			return da, errStale
		}
		pd.Status = cand.Status // capacity reported by the monitor
		if seen[key] || dn.Offline || pd.Offline || pd.FreeBytes() < l.VDSizeBytes {
			return da, fmt.Errorf("vda: placer chose an unusable %s", pdWhat(pd.DNName, pd.Name))
		}
		seen[key] = true
		pd.AllocatedBytes += l.VDSizeBytes
		pd.VDCount++
		pd.Status = Status{}
		if err := txPut(tx, key, pd); err != nil {
			return da, err
		}
		da.VDs = append(da.VDs, VD{ID: nvmeof.NewID(), Idx: i, DNID: dn.ID, DNName: dn.Name,
			PDID: pd.ID, PDName: pd.Name, SizeBytes: l.VDSizeBytes})
	}
	for i, cand := range p.CNs {
		cn, changed, err := txRead[ControllerNode](tx, KeyCN(cand.Name), revs)
		if err != nil {
			return da, err
		}
		if cn.Offline && changed {
			return da, errStale
		}
		if seen[KeyCN(cn.Name)] || cn.Offline {
			return da, fmt.Errorf("vda: placer chose an unusable controller node %q", cn.Name)
		}
		seen[KeyCN(cn.Name)] = true
		cn.CntlrCount++
		if err := txPut(tx, KeyCN(cn.Name), cn); err != nil {
			return da, err
		}
		da.Cntlrs = append(da.Cntlrs, Cntlr{ID: nvmeof.NewID(), Idx: i, CNID: cn.ID, CNName: cn.Name, Primary: i == 0})
	}
	da.PrimaryCntlrID = da.Cntlrs[0].ID
	return da, txPut(tx, KeyDA(da.Name), da)
}

// GetDiskArray returns a DA with its status.
func (c *Cluster) GetDiskArray(ctx context.Context, name string) (DiskArray, error) {
	if err := ValidateName(nvmeof.ResourceDA, name); err != nil {
		return DiskArray{}, err
	}
	da, err := getJSON(ctx, c, KeyDA(name), daWhat(name), daStatus)
	da.Status = da.Status.AtEpoch(da.Epoch)
	return da, err
}

// ListDiskArrays returns one page of DAs in name order.
func (c *Cluster) ListDiskArrays(ctx context.Context, page Page) ([]DiskArray, string, error) {
	das, next, err := listJSON(ctx, c, PrefixDA, page, tokenNames(nvmeof.ResourceDA), daStatus)
	for i := range das {
		das[i].Status = das[i].Status.AtEpoch(das[i].Epoch)
	}
	return das, next, err
}

// ModifyDiskArray changes a DA's description.
func (c *Cluster) ModifyDiskArray(ctx context.Context, name string, u DiskArrayUpdate) (DiskArray, error) {
	if err := ValidateName(nvmeof.ResourceDA, name); err != nil {
		return DiskArray{}, err
	}
	if u.Description != nil {
		if err := ValidateDescription(*u.Description); err != nil {
			return DiskArray{}, err
		}
	}
	var da DiskArray
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		if da, err = txGet[DiskArray](tx, KeyDA(name), daWhat(name)); err != nil {
			return err
		}
		if u.Description != nil {
			da.Description = *u.Description
		}
		return txPut(tx, KeyDA(name), da)
	})
	if err != nil {
		return DiskArray{}, err
	}
	da.Status, err = c.readStatus(ctx, KeyDA(name))
	da.Status = da.Status.AtEpoch(da.Epoch)
	return da, err
}

// DeleteDiskArray removes a DA without exporters and releases what it
// reserved on its PDs and CNs, in one transaction.
func (c *Cluster) DeleteDiskArray(ctx context.Context, name string) error {
	if err := ValidateName(nvmeof.ResourceDA, name); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		da, err := txGet[DiskArray](tx, KeyDA(name), daWhat(name))
		if err != nil {
			return err
		}
		if da.ExpCount > 0 {
			return fmt.Errorf("%w: %s still has %d exporters", ErrFailedPrecondition, daWhat(name), da.ExpCount)
		}
		for _, vd := range da.VDs {
			pd, err := txGet[PhysicalDisk](tx, KeyPD(vd.DNName, vd.PDName), pdWhat(vd.DNName, vd.PDName))
			if err != nil {
				return err
			}
			pd.AllocatedBytes -= min(pd.AllocatedBytes, vd.SizeBytes)
			pd.VDCount = max(0, pd.VDCount-1)
			if err := txPut(tx, KeyPD(vd.DNName, vd.PDName), pd); err != nil {
				return err
			}
		}
		for _, cntlr := range da.Cntlrs {
			cn, err := txGet[ControllerNode](tx, KeyCN(cntlr.CNName), fmt.Sprintf("controller node %q", cntlr.CNName))
			if err != nil {
				return err
			}
			cn.CntlrCount = max(0, cn.CntlrCount-1)
			if err := txPut(tx, KeyCN(cn.Name), cn); err != nil {
				return err
			}
		}
		txDelete(tx, KeyDA(name))
		return nil
	})
}
