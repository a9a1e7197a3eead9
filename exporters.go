package vda

import (
	"context"
	"errors"
	"fmt"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// ExporterSpec is what creates an exporter.
type ExporterSpec struct {
	DAName       string
	Name         string
	Description  string
	InitiatorNQN string
	// SnapName or CloneName (at most one) export that snapshot (read-only:
	// SPDK fails writes) or clone of the DA instead of its volume. It must
	// exist and have no exporter yet; it need not be Ready: the exporter's
	// port on the primary reports "not ready" until the primary holds it.
	SnapName  string
	CloneName string
}

// ExporterUpdate changes an exporter; nil fields are left alone.
type ExporterUpdate struct {
	Description  *string
	InitiatorNQN *string
}

func expWhat(da, exp string) string { return fmt.Sprintf("exporter %q of disk array %q", exp, da) }

func validateNewExpNames(da, exp string) error {
	if err := ValidateName(nvmeof.ResourceDA, da); err != nil {
		return err
	}
	return ValidateNewName(nvmeof.ResourceExporter, exp)
}

func validateExpNames(da, exp string) error {
	if err := ValidateName(nvmeof.ResourceDA, da); err != nil {
		return err
	}
	return ValidateName(nvmeof.ResourceExporter, exp)
}

// CreateExporter exports a DA to an initiator through every controller.
func (c *Cluster) CreateExporter(ctx context.Context, spec ExporterSpec) (Exporter, error) {
	if err := validateNewExpNames(spec.DAName, spec.Name); err != nil {
		return Exporter{}, err
	}
	if err := ValidateDescription(spec.Description); err != nil {
		return Exporter{}, err
	}
	host, err := ParseInitiatorNQN(spec.InitiatorNQN)
	if err != nil {
		return Exporter{}, err
	}
	if err := validateExpVolume(spec.SnapName, spec.CloneName); err != nil {
		return Exporter{}, err
	}
	nqn, err := nvmeof.ExpNQN(spec.DAName, spec.Name)
	if err != nil {
		return Exporter{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	var exp Exporter
	err = c.update(ctx, func(tx *store.Tx) error {
		da, err := txGet[DiskArray](tx, KeyDA(spec.DAName), daWhat(spec.DAName))
		if err != nil {
			return err
		}
		key := KeyExp(spec.DAName, spec.Name)
		old, found, err := txLookup[Exporter](tx, key)
		if err != nil {
			return err
		}
		if found {
			exp = old
			return sameSpec(expWhat(spec.DAName, spec.Name), field{"description", old.Description, spec.Description},
				field{"initiator_nqn", old.InitiatorNQN, host},
				field{"snap_name", old.SnapName, spec.SnapName}, field{"clone_name", old.CloneName, spec.CloneName})
		}
		exp = Exporter{ID: nvmeof.NewID(), Name: spec.Name, DAName: da.Name, DAID: da.ID,
			Description: spec.Description, NQN: nqn.String(), InitiatorNQN: host,
			SnapName: spec.SnapName, CloneName: spec.CloneName}
		if err := txBindVolume(tx, &exp); err != nil {
			return err
		}
		for _, cntlr := range da.Cntlrs {
			exp.Ports = append(exp.Ports, ExpPort{ID: nvmeof.NewID(), CntlrIdx: cntlr.Idx})
		}
		da.ExpCount++
		if err := txPut(tx, KeyDA(da.Name), da); err != nil {
			return err
		}
		return txPut(tx, key, exp)
	})
	if err != nil {
		return Exporter{}, err
	}
	return exp, c.describePorts(ctx, &exp)
}

// describePorts fills in each port's CN and its listener from the DA.
func (c *Cluster) describePorts(ctx context.Context, exp *Exporter) error {
	da, err := c.GetDiskArray(ctx, exp.DAName)
	if errors.Is(err, ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	exp.Status = exp.Status.AtEpoch(da.Epoch)
	cns := map[string]ControllerNode{}
	for i := range exp.Ports {
		p := &exp.Ports[i]
		for _, cntlr := range da.Cntlrs {
			if cntlr.Idx != p.CntlrIdx {
				continue
			}
			cn, ok := cns[cntlr.CNName]
			if !ok {
				if cn, err = c.GetControllerNode(ctx, cntlr.CNName); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				cns[cntlr.CNName] = cn
			}
			p.CNName, p.CNListener = cntlr.CNName, cn.Listener
		}
	}
	return nil
}

// GetExporter returns an exporter with its status and, per controller,
// the CN and listener an initiator connects to.
func (c *Cluster) GetExporter(ctx context.Context, da, name string) (Exporter, error) {
	if err := validateExpNames(da, name); err != nil {
		return Exporter{}, err
	}
	exp, err := getJSON(ctx, c, KeyExp(da, name), expWhat(da, name), expStatus)
	if err != nil {
		return Exporter{}, err
	}
	return exp, c.describePorts(ctx, &exp)
}

// ListExporters returns one page of the exporters of DA da, or of every
// DA if da is "".
func (c *Cluster) ListExporters(ctx context.Context, da string, page Page) ([]Exporter, string, error) {
	prefix, tok := PrefixExp, tokenNames(nvmeof.ResourceDA, nvmeof.ResourceExporter)
	if da != "" {
		if err := ValidateName(nvmeof.ResourceDA, da); err != nil {
			return nil, "", err
		}
		if err := c.exists(ctx, KeyDA(da), daWhat(da)); err != nil {
			return nil, "", err
		}
		prefix, tok = KeyExps(da), tokenNames(nvmeof.ResourceExporter)
	}
	return listJSON(ctx, c, prefix, page, tok, expStatus)
}

// ModifyExporter changes an exporter's description or initiator.
func (c *Cluster) ModifyExporter(ctx context.Context, da, name string, u ExporterUpdate) (Exporter, error) {
	if err := validateExpNames(da, name); err != nil {
		return Exporter{}, err
	}
	if u.Description != nil {
		if err := ValidateDescription(*u.Description); err != nil {
			return Exporter{}, err
		}
	}
	var host string
	if u.InitiatorNQN != nil {
		var err error
		if host, err = ParseInitiatorNQN(*u.InitiatorNQN); err != nil {
			return Exporter{}, err
		}
	}
	var exp Exporter
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		if exp, err = txGet[Exporter](tx, KeyExp(da, name), expWhat(da, name)); err != nil {
			return err
		}
		if u.Description != nil {
			exp.Description = *u.Description
		}
		if u.InitiatorNQN != nil {
			exp.InitiatorNQN = host
		}
		return txPut(tx, KeyExp(da, name), exp)
	})
	if err != nil {
		return Exporter{}, err
	}
	if exp.Status, err = c.readStatus(ctx, KeyExp(da, name)); err != nil {
		return Exporter{}, err
	}
	return exp, c.describePorts(ctx, &exp)
}

// DeleteExporter removes an exporter.
func (c *Cluster) DeleteExporter(ctx context.Context, da, name string) error {
	if err := validateExpNames(da, name); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		exp, err := txGet[Exporter](tx, KeyExp(da, name), expWhat(da, name))
		if err != nil {
			return err
		}
		if err := txUnbindVolume(tx, exp); err != nil {
			return err
		}
		arr, err := txGet[DiskArray](tx, KeyDA(da), daWhat(da))
		if err != nil {
			return err
		}
		arr.ExpCount = max(0, arr.ExpCount-1)
		txDelete(tx, KeyExp(da, name))
		return txPut(tx, KeyDA(da), arr)
	})
}

// Summary counts the cluster's objects and PD capacity.
func (c *Cluster) Summary(ctx context.Context) (ClusterSummary, error) {
	var s ClusterSummary
	cands, _, err := c.candidates(ctx)
	if err != nil {
		return s, err
	}
	s.DNCount, s.PDCount, s.CNCount = len(cands.DNs), len(cands.PDs), len(cands.CNs)
	for _, pd := range cands.PDs {
		s.TotalBytes += pd.CapacityBytes()
		s.FreeBytes += pd.FreeBytes()
	}
	for _, p := range []struct {
		prefix string
		n      *int
	}{{PrefixDA, &s.DACount}, {PrefixExp, &s.ExpCount}} {
		res, err := c.s.List(ctx, p.prefix, store.ListOptions{})
		if err != nil {
			return s, err
		}
		*p.n = len(res.KVs)
	}
	return s, nil
}
