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
	// CNLocations and DNLocations constrain placement: when non-empty,
	// the DA's controllers go only on CNs whose Location is one of
	// CNLocations, its VDs only on PDs of DNs whose Location is one of
	// DNLocations (at most MaxPlacementLocations each, no duplicates).
	// Placement that nothing satisfies is ErrResourceExhausted.
	CNLocations []string
	DNLocations []string
}

// DiskArrayUpdate changes a DA; nil fields are left alone.
type DiskArrayUpdate struct {
	Description *string
	// SizeBytes grows the DA's volume online (--da-size) up to
	// DiskArray.MaxSizeBytes, in whole lvstore clusters; it never shrinks.
	SizeBytes *uint64
	// QoS replaces the DA's QoS limits; the zero QoS removes them.
	QoS *QoS
}

func daWhat(name string) string { return fmt.Sprintf("disk array %q", name) }

// candidates reads every DN, PD and CN with its status (capacity, health)
// and the revision each was read at, from the store (Summary; placement
// uses the candidate cache).
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
	var err error
	if spec.CNLocations, err = normLocations("cn_locations", spec.CNLocations); err != nil {
		return DALayout{}, err
	}
	if spec.DNLocations, err = normLocations("dn_locations", spec.DNLocations); err != nil {
		return DALayout{}, err
	}
	if spec.PhysicalSizeBytes == 0 {
		spec.PhysicalSizeBytes = spec.SizeBytes
	}
	return Layout(spec.SizeBytes, spec.PhysicalSizeBytes, spec.Conf.StripeCount, spec.Conf.StripeSizeKB)
}

// same reports whether an existing DA is what spec (validated) asks for.
func (spec DiskArraySpec) same(da DiskArray) error {
	return sameSpec(daWhat(spec.Name), field{"description", da.Description, spec.Description},
		field{"cntlr_cnt", da.CntlrCount, spec.CntlrCount}, field{"da_size", da.SizeBytes, spec.SizeBytes},
		field{"physical_size", da.PhysicalSizeBytes, spec.PhysicalSizeBytes},
		field{"stripe_count", da.StripeCount, spec.Conf.StripeCount}, field{"stripe_size_kb", da.StripeSizeKB, spec.Conf.StripeSizeKB},
		field{"cn_locations", showLocations(da.CNLocations), showLocations(spec.CNLocations)},
		field{"dn_locations", showLocations(da.DNLocations), showLocations(spec.DNLocations)})
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

// ModifyDiskArray changes a DA's description, grows its volume
// (SizeBytes: never shrinks, at most MaxSizeBytes) or replaces its QoS
// limits. The monitor pushes the change to the primary, which resizes the
// lvol (hosts see the namespace grow) and sets the limits. A failed
// request changes nothing; a repeated one is a no-op.
func (c *Cluster) ModifyDiskArray(ctx context.Context, name string, u DiskArrayUpdate) (DiskArray, error) {
	if err := ValidateName(nvmeof.ResourceDA, name); err != nil {
		return DiskArray{}, err
	}
	if u.Description != nil {
		if err := ValidateDescription(*u.Description); err != nil {
			return DiskArray{}, err
		}
	}
	if u.SizeBytes != nil {
		if err := validateSize("da_size", *u.SizeBytes); err != nil {
			return DiskArray{}, err
		}
	}
	if u.QoS != nil {
		if err := u.QoS.Validate(); err != nil {
			return DiskArray{}, err
		}
	}
	var da DiskArray
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		if da, err = txGet[DiskArray](tx, KeyDA(name), daWhat(name)); err != nil {
			return err
		}
		if u.SizeBytes != nil {
			if err := da.checkResize(*u.SizeBytes); err != nil {
				return err
			}
		}
		old := da
		if u.Description != nil {
			da.Description = *u.Description
		}
		if u.SizeBytes != nil {
			da.SizeBytes = *u.SizeBytes
		}
		if u.QoS != nil {
			da.QoS = *u.QoS
		}
		if da.Description == old.Description && da.SizeBytes == old.SizeBytes && da.QoS == old.QoS {
			return nil // nothing changes: no write, no push
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
		if da.SnapCount > 0 || da.CloneCount > 0 {
			return txSnapshotsAndClones(tx, da)
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
