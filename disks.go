package vda

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// PhysicalDiskSpec is what creates a PD.
type PhysicalDiskSpec struct {
	DNName      string
	Name        string
	Description string
	// Conf is the bdev the PD is made from (required), stored in
	// canonical form (PDConf.Canonical); ParsePDConf reads the CLI's
	// --pd-conf JSON.
	Conf PDConf
	// Force lets the agent put an lvstore on an aio device that holds
	// data of its own (not all zeros, and no lvstore of this PD), which
	// it refuses otherwise: pd create --force. Only for aio PDs.
	Force bool
}

// PhysicalDiskUpdate changes a PD; nil fields are left alone.
type PhysicalDiskUpdate struct {
	Description *string
	Offline     *bool
}

func pdWhat(dn, pd string) string { return fmt.Sprintf("physical disk %q on disk node %q", pd, dn) }

func validatePDNames(dn, pd string) error {
	if err := ValidateName(nvmeof.ResourceDN, dn); err != nil {
		return err
	}
	return ValidateName(nvmeof.ResourcePD, pd)
}

// CreatePhysicalDisk adds a PD to a disk node.
func (c *Cluster) CreatePhysicalDisk(ctx context.Context, spec PhysicalDiskSpec) (PhysicalDisk, error) {
	if err := ValidateName(nvmeof.ResourceDN, spec.DNName); err != nil {
		return PhysicalDisk{}, err
	}
	if err := ValidateNewName(nvmeof.ResourcePD, spec.Name); err != nil {
		return PhysicalDisk{}, err
	}
	if err := ValidateDescription(spec.Description); err != nil {
		return PhysicalDisk{}, err
	}
	conf, err := spec.Conf.Canonical()
	if err != nil {
		return PhysicalDisk{}, err
	}
	if conf.Type == PDMalloc && conf.SizeBytes > c.maxMalloc {
		return PhysicalDisk{}, fmt.Errorf("%w: pd_conf: malloc size %d bytes is more than this cluster's limit of %d bytes "+
			"(a malloc PD lives in the disk node's RAM; the limit is vda.Config.MaxMallocPDBytes, vda-portal --max-malloc-pd-bytes)",
			ErrInvalidArgument, conf.SizeBytes, c.maxMalloc)
	}
	if spec.Force && conf.Type != PDAio {
		return PhysicalDisk{}, fmt.Errorf("%w: force applies to aio PDs only, not %s", ErrInvalidArgument, conf.Type)
	}
	var pd PhysicalDisk
	err = c.update(ctx, func(tx *store.Tx) error {
		dn, err := txGet[DiskNode](tx, KeyDN(spec.DNName), fmt.Sprintf("disk node %q", spec.DNName))
		if err != nil {
			return err
		}
		key := KeyPD(spec.DNName, spec.Name)
		old, found, err := txLookup[PhysicalDisk](tx, key)
		if err != nil {
			return err
		}
		if found {
			pd = old
			return sameSpec(pdWhat(spec.DNName, spec.Name), field{"description", old.Description, spec.Description},
				field{"pd_conf", old.Conf, conf}, field{"force", old.Force, spec.Force})
		}
		if err := txDeviceFree(tx, dn.Name, conf); err != nil {
			return err
		}
		pd = PhysicalDisk{ID: nvmeof.NewID(), Name: spec.Name, DNName: dn.Name, DNID: dn.ID,
			Description: spec.Description, Conf: conf, Force: spec.Force}
		dn.PDCount++
		if err := txPut(tx, KeyDN(dn.Name), dn); err != nil {
			return err
		}
		return txPut(tx, key, pd)
	})
	if err != nil {
		return PhysicalDisk{}, err
	}
	return pd, nil
}

// txDeviceFree fails with ErrAlreadyExists if another PD of dn uses the
// device of conf. Listing is safe here: every PD create on dn also writes
// the DN's key, so a concurrent one makes this transaction conflict.
func txDeviceFree(tx *store.Tx, dn string, conf PDConf) error {
	dev := conf.Device()
	if dev == "" {
		return nil
	}
	kvs, err := tx.List(KeyPDs(dn))
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		var other PhysicalDisk
		if err := json.Unmarshal(kv.Value, &other); err != nil {
			return fmt.Errorf("vda: decode %s: %w", kv.Key, err)
		}
		if other.Conf.Type == conf.Type && other.Conf.Device() == dev {
			return fmt.Errorf("%w: %s already uses %s %s", ErrAlreadyExists, pdWhat(dn, other.Name), conf.Type, dev)
		}
	}
	return nil
}

// GetPhysicalDisk returns a PD with its status.
func (c *Cluster) GetPhysicalDisk(ctx context.Context, dn, name string) (PhysicalDisk, error) {
	if err := validatePDNames(dn, name); err != nil {
		return PhysicalDisk{}, err
	}
	return getJSON(ctx, c, KeyPD(dn, name), pdWhat(dn, name), pdStatus)
}

// ListPhysicalDisks returns one page of the PDs of disk node dn, or of
// every disk node if dn is "".
func (c *Cluster) ListPhysicalDisks(ctx context.Context, dn string, page Page) ([]PhysicalDisk, string, error) {
	return listUnder(ctx, c, children{PrefixPD, nvmeof.ResourceDN, nvmeof.ResourcePD, KeyDN,
		func(dn string) string { return fmt.Sprintf("disk node %q", dn) }, KeyPDs}, dn, page, pdStatus)
}

// ModifyPhysicalDisk changes a PD.
func (c *Cluster) ModifyPhysicalDisk(ctx context.Context, dn, name string, u PhysicalDiskUpdate) (PhysicalDisk, error) {
	if err := validatePDNames(dn, name); err != nil {
		return PhysicalDisk{}, err
	}
	if u.Description != nil {
		if err := ValidateDescription(*u.Description); err != nil {
			return PhysicalDisk{}, err
		}
	}
	var pd PhysicalDisk
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		if pd, err = txGet[PhysicalDisk](tx, KeyPD(dn, name), pdWhat(dn, name)); err != nil {
			return err
		}
		if u.Description != nil {
			pd.Description = *u.Description
		}
		if u.Offline != nil {
			pd.Offline = *u.Offline
		}
		return txPut(tx, KeyPD(dn, name), pd)
	})
	if err != nil {
		return PhysicalDisk{}, err
	}
	pd.Status, err = c.readStatus(ctx, KeyPD(dn, name))
	return pd, err
}

// DeletePhysicalDisk removes a PD that holds no VDs.
func (c *Cluster) DeletePhysicalDisk(ctx context.Context, dn, name string) error {
	if err := validatePDNames(dn, name); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		pd, err := txGet[PhysicalDisk](tx, KeyPD(dn, name), pdWhat(dn, name))
		if err != nil {
			return err
		}
		if pd.VDCount > 0 {
			return fmt.Errorf("%w: %s still holds %d virtual disks", ErrFailedPrecondition, pdWhat(dn, name), pd.VDCount)
		}
		node, err := txGet[DiskNode](tx, KeyDN(dn), fmt.Sprintf("disk node %q", dn))
		if err != nil {
			return err
		}
		node.PDCount = max(0, node.PDCount-1)
		txDelete(tx, KeyPD(dn, name))
		return txPut(tx, KeyDN(dn), node)
	})
}
