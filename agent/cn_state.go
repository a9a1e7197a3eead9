package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// cnSnapshot is what SPDK held when a sync started: one listing of each
// kind, read concurrently. Tasks never write to it; each task copies the
// objects it owns (see cnTask) and tracks its own changes.
type cnSnapshot struct {
	bdevs      map[string]*spdk.Bdev // by name and by every alias
	raids      map[string]*spdk.RaidBdev
	lvstores   map[string]*spdk.Lvstore // by name
	ctrlrs     map[string]*spdk.NvmeController
	subsystems map[nvmeof.NQN]*spdk.Subsystem
	transports map[string]bool // upper-case trtype
	// exportersOf lists the VDA exporter subsystems with a namespace on
	// each bdev name, sorted.
	exportersOf map[string][]nvmeof.NQN
	// lvols holds the lvol bdevs of each lvstore, by lvstore name and lvol
	// name (from their "lvs/lvol" aliases).
	lvols map[string]map[string]*spdk.Bdev
}

// listCN reads SPDK's state: bdevs, raids, lvstores, NVMe controllers,
// subsystems and transports, all in flight at once.
func listCN(ctx context.Context, c *spdk.Client) (*cnSnapshot, error) {
	var (
		bdevs  []spdk.Bdev
		raids  []spdk.RaidBdev
		lvss   []spdk.Lvstore
		ctrls  []spdk.NvmeController
		subs   []spdk.Subsystem
		trs    []spdk.Transport
		wg     sync.WaitGroup
		errs   [6]error
		listFn = []func() error{
			func() (err error) { bdevs, err = c.BdevGetBdevsBrief(ctx, spdk.BdevGetBdevsParams{}); return },
			func() (err error) {
				raids, err = c.BdevRaidGetBdevs(ctx, spdk.BdevRaidGetBdevsParams{Category: spdk.RaidAll})
				return
			},
			func() (err error) { lvss, err = c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{}); return },
			func() (err error) {
				ctrls, err = c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{})
				return
			},
			func() (err error) { subs, err = c.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{}); return },
			func() (err error) { trs, err = c.NvmfGetTransports(ctx); return },
		}
	)
	for i, fn := range listFn {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("agent: listing SPDK state: %w", err)
		}
	}
	s := &cnSnapshot{
		bdevs: map[string]*spdk.Bdev{}, raids: map[string]*spdk.RaidBdev{}, lvstores: map[string]*spdk.Lvstore{},
		ctrlrs: map[string]*spdk.NvmeController{}, subsystems: map[nvmeof.NQN]*spdk.Subsystem{}, transports: map[string]bool{},
		exportersOf: map[string][]nvmeof.NQN{}, lvols: map[string]map[string]*spdk.Bdev{},
	}
	for i := range bdevs {
		b := &bdevs[i]
		s.bdevs[b.Name] = b
		for _, a := range b.Aliases {
			s.bdevs[a] = b
			if lvs, lvol, ok := strings.Cut(a, "/"); ok && b.ProductName == spdk.ProductLvol {
				if s.lvols[lvs] == nil {
					s.lvols[lvs] = map[string]*spdk.Bdev{}
				}
				s.lvols[lvs][lvol] = b
			}
		}
	}
	for i := range raids {
		s.raids[raids[i].Name] = &raids[i]
	}
	for i := range lvss {
		s.lvstores[lvss[i].Name] = &lvss[i]
	}
	for i := range ctrls {
		s.ctrlrs[ctrls[i].Name] = &ctrls[i]
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].NQN < subs[j].NQN })
	for i := range subs {
		nqn := nvmeof.NQN(subs[i].NQN)
		s.subsystems[nqn] = &subs[i]
		if _, ok := ownedCN(string(nqn), nvmeof.KindExpNQN); ok {
			for _, ns := range subs[i].Namespaces {
				s.exportersOf[ns.BdevName] = append(s.exportersOf[ns.BdevName], nqn)
			}
		}
	}
	for _, t := range trs {
		s.transports[strings.ToUpper(t.TRType)] = true
	}
	return s, nil
}

// isCNKind reports whether an owned name is of a kind a controller node
// creates. A CN never touches disk-node objects, even on a shared SPDK.
func isCNKind(k nvmeof.Kind) bool {
	switch k {
	case nvmeof.KindVDController, nvmeof.KindRaid, nvmeof.KindDALvstore, nvmeof.KindDALvol,
		nvmeof.KindExpController, nvmeof.KindExpNQN, nvmeof.KindSnapLvol, nvmeof.KindCloneLvol:
		return true
	}
	return false
}

// ownedCN parses an SPDK name and reports whether it is a CN object of kind k.
func ownedCN(name string, k nvmeof.Kind) (nvmeof.Name, bool) {
	n, ok := nvmeof.ParseName(name)
	return n, ok && n.Kind == k && isCNKind(k)
}

// ---- comparisons

// cnSameTransport reports whether SPDK's (upper-cased) address is tid.
func cnSameTransport(trtype, adrfam, traddr, trsvcid string, tid nvmeof.TransportID) bool {
	got, err := nvmeof.NewTransportID(trtype, adrfam, traddr, trsvcid)
	return err == nil && got == tid
}

// cnCtrlrMatches reports whether c has exactly one path, to subnqn at tid,
// as host hostNQN (SPDK releases that do not report the host pass).
func cnCtrlrMatches(c *spdk.NvmeController, tid nvmeof.TransportID, subnqn, hostNQN nvmeof.NQN) bool {
	if len(c.Ctrlrs) != 1 {
		return false
	}
	p := c.Ctrlrs[0]
	return cnSameTransport(p.TRID.TRType, p.TRID.AdrFam, p.TRID.TRAddr, p.TRID.TRSvcID, tid) &&
		p.TRID.SubNQN == string(subnqn) && (p.Host.NQN == "" || p.Host.NQN == string(hostNQN))
}

// cnCtrlrFailed reports whether any path of c is failed: SPDK gave up on it
// and will not reconnect by itself.
func cnCtrlrFailed(c *spdk.NvmeController) bool {
	for _, p := range c.Ctrlrs {
		if p.State == spdk.CtrlrFailed {
			return true
		}
	}
	return false
}

// cnCtrlrState returns the state of c's first path ("" without paths).
func cnCtrlrState(c *spdk.NvmeController) string {
	if len(c.Ctrlrs) == 0 {
		return ""
	}
	return c.Ctrlrs[0].State
}
