package realbench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/internal/rpcmeter"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// ReadEachObject reads what a no-op resync of l checks, the way a
// reconciler that looks at one object at a time would: a get per object
// (per PD its bdev and lvstore, per VD its lvol and subsystem on a disk
// node; per array its VD controllers, raid, lvstore, lvol, exporter
// subsystem and its listeners on a controller node), each waiting for the
// answer before the next. It returns the time taken and the requests, by
// method. It is the baseline of the agent's resync, which lists each kind
// of object once.
func (n *Node) ReadEachObject(ctx context.Context, l Layout) (time.Duration, map[string]int, error) {
	m, err := rpcmeter.Start(filepath.Join(filepath.Dir(n.Meter.Addr()), "each.sock"), n.Target.Socket(), true)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = m.Close() }()
	c, err := spdk.Dial(ctx, m.Addr())
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = c.Close() }()
	var calls []func() error
	bdev := func(name string) func() error {
		return func() error { _, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: name}); return err }
	}
	lvstore := func(name string) func() error {
		return func() error { _, err := c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{LvsName: name}); return err }
	}
	subsystem := func(nqn nvmeof.NQN) func() error {
		return func() error {
			_, err := c.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{NQN: string(nqn)})
			return err
		}
	}
	if n.Role == agent.RoleDN {
		for _, pd := range l.DN.GetPds() {
			lvs := nvmeof.PDLvstoreName(pd.GetId())
			calls = append(calls, bdev(nvmeof.PDBdevName(pd.GetId())), lvstore(lvs))
			for _, vd := range pd.GetVds() {
				calls = append(calls, bdev(nvmeof.LvolAlias(lvs, nvmeof.VDLvolName(vd.GetId()))), subsystem(nvmeof.VDNQN(vd.GetId())))
			}
		}
	} else {
		for _, ct := range l.CN.GetCntlrs() {
			da := ct.GetDa().GetId()
			for _, vd := range ct.GetVds() {
				name := nvmeof.VDControllerName(vd.GetId())
				calls = append(calls, func() error {
					_, err := c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{Name: name})
					return err
				})
			}
			calls = append(calls, bdev(nvmeof.RaidName(da)), lvstore(nvmeof.DALvstoreName(da)),
				bdev(nvmeof.LvolAlias(nvmeof.DALvstoreName(da), nvmeof.DALvolName(da))))
			for _, x := range ct.GetExps() {
				nqn := nvmeof.NQN(x.GetNqn())
				calls = append(calls, subsystem(nqn), func() error {
					_, err := c.NvmfSubsystemGetListeners(ctx, spdk.NQNParams{NQN: string(nqn)})
					return err
				})
			}
		}
	}
	start := time.Now()
	for i, call := range calls {
		if err := call(); err != nil {
			return 0, nil, fmt.Errorf("read %d of %d: %w", i+1, len(calls), err)
		}
	}
	return time.Since(start), m.Counts(), nil
}
