package vda

import (
	"context"
	"errors"
	"fmt"

	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// SwitchoverDiskArray moves a DA's primary to its controller with index
// cntlrIdx (a planned switchover). It commits the new primary and Epoch+1 in
// one transaction; the monitor then fences the VDs (their DNs admit only
// the new primary), promotes it and re-points every other controller.
//
// It refuses, with ErrFailedPrecondition, a target that is already the
// primary or sits on a controller node that is offline or that the monitor
// reports failed; an index the DA has no controller for is
// ErrInvalidArgument.
func (c *Cluster) SwitchoverDiskArray(ctx context.Context, name string, cntlrIdx int) (DiskArray, error) {
	if err := ValidateName(nvmeof.ResourceDA, name); err != nil {
		return DiskArray{}, err
	}
	if cntlrIdx < 0 || cntlrIdx > nvmeof.MaxControllerIndex {
		return DiskArray{}, fmt.Errorf("%w: controller index %d is not in 0..%d", ErrInvalidArgument, cntlrIdx, nvmeof.MaxControllerIndex)
	}
	var da DiskArray
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		if da, err = txGet[DiskArray](tx, KeyDA(name), daWhat(name)); err != nil {
			return err
		}
		return switchover(tx, &da, cntlrIdx)
	})
	if err != nil {
		return DiskArray{}, err
	}
	c.log.Info("switchover committed", "da", name, "primary", da.PrimaryCntlrID, "epoch", da.Epoch)
	da.Status, err = c.readStatus(ctx, KeyDA(name))
	da.Status = da.Status.AtEpoch(da.Epoch)
	return da, err
}

func switchover(tx *store.Tx, da *DiskArray, idx int) error {
	var target *Cntlr
	ctrls := make([]failover.Controller, len(da.Cntlrs))
	for i := range da.Cntlrs {
		cn := &da.Cntlrs[i]
		ctrls[i] = failover.Controller{ID: cn.ID, Idx: cn.Idx, CNID: cn.CNID, Primary: cn.ID == da.PrimaryCntlrID}
		if cn.Idx == idx {
			target = cn
		}
	}
	if target == nil {
		return fmt.Errorf("%w: %s has no controller %d", ErrInvalidArgument, daWhat(da.Name), idx)
	}
	if target.ID == da.PrimaryCntlrID {
		return fmt.Errorf("%w: controller %d of %s is already the primary", ErrFailedPrecondition, idx, daWhat(da.Name))
	}
	cnWhat := fmt.Sprintf("controller node %q", target.CNName)
	cn, err := txGet[ControllerNode](tx, KeyCN(target.CNName), cnWhat)
	if err != nil {
		return err
	}
	st, err := txStatus(tx, KeyCN(target.CNName))
	if err != nil {
		return err
	}
	switch {
	case cn.Offline:
		return fmt.Errorf("%w: controller %d of %s is on %s, which is offline", ErrFailedPrecondition, idx, daWhat(da.Name), cnWhat)
	case st.Health == HealthFailed:
		return fmt.Errorf("%w: controller %d of %s is on %s, which has failed", ErrFailedPrecondition, idx, daWhat(da.Name), cnWhat)
	}
	nodes := map[string]failover.Node{target.CNID: {ID: target.CNID, Healthy: true}}
	d, err := failover.Switchover(ctrls, nodes, idx, uint64(da.Epoch))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFailedPrecondition, err)
	}
	for i := range da.Cntlrs {
		da.Cntlrs[i].Primary = da.Cntlrs[i].ID == d.NewPrimary.ID
	}
	da.PrimaryCntlrID, da.Epoch = d.NewPrimary.ID, int64(d.Epoch)
	da.SwitchoverEpoch = da.Epoch
	return txPut(tx, KeyDA(da.Name), *da)
}

// txStatus reads the status of the object at specKey inside a transaction
// (the zero Status if the monitor never wrote one).
func txStatus(tx *store.Tx, specKey string) (Status, error) {
	st, err := txGet[Status](tx, KeyStatus(specKey), "status of "+specKey)
	if errors.Is(err, ErrNotFound) {
		return Status{}, nil
	}
	return st, err
}
