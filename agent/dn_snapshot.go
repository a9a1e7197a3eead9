package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// dnSnapshot is what SPDK had when a sync listed it (and after the examine
// step re-listed it). Every listing is one read-only call.
type dnSnapshot struct {
	bdevs      map[string]*spdk.Bdev // by name, uuid and alias
	lvstores   map[string]spdk.Lvstore
	lvols      map[string]spdk.Lvol // by alias "<lvstore>/<lvol>"
	lvolPlaces map[string][]string  // lvol name -> aliases, to find a VD's lvol in the wrong lvstore
	subsystems map[nvmeof.NQN]*spdk.Subsystem
	transports []spdk.Transport
	ctrlrs     map[string]spdk.NvmeController
}

// list reads every object a disk node reconciles, with the calls in
// flight together.
func (n *dnNode) list(ctx context.Context) (*dnSnapshot, error) {
	s := &dnSnapshot{}
	var (
		bdevs    []spdk.Bdev
		lvstores []spdk.Lvstore
		lvols    []spdk.Lvol
		subs     []spdk.Subsystem
		ctrlrs   []spdk.NvmeController
	)
	err := together(
		func() (err error) { bdevs, err = n.c.BdevGetBdevsBrief(ctx, spdk.BdevGetBdevsParams{}); return },
		func() (err error) { lvstores, err = n.c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{}); return },
		func() (err error) { lvols, err = n.c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsParams{}); return },
		func() (err error) { subs, err = n.c.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{}); return },
		func() (err error) { s.transports, err = n.c.NvmfGetTransports(ctx); return },
		func() (err error) {
			ctrlrs, err = n.c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{})
			return
		},
	)
	if err != nil {
		return nil, err
	}
	s.setBdevs(bdevs)
	s.setLvstores(lvstores)
	s.setLvols(lvols)
	s.subsystems = make(map[nvmeof.NQN]*spdk.Subsystem, len(subs))
	for i := range subs {
		s.subsystems[nvmeof.NQN(subs[i].NQN)] = &subs[i]
	}
	s.ctrlrs = make(map[string]spdk.NvmeController, len(ctrlrs))
	for _, c := range ctrlrs {
		s.ctrlrs[c.Name] = c
	}
	return s, nil
}

// relist re-reads bdevs, lvstores and lvols (after examine found some).
func (n *dnNode) relist(ctx context.Context, s *dnSnapshot) error {
	var (
		bdevs    []spdk.Bdev
		lvstores []spdk.Lvstore
		lvols    []spdk.Lvol
	)
	err := together(
		func() (err error) { bdevs, err = n.c.BdevGetBdevsBrief(ctx, spdk.BdevGetBdevsParams{}); return },
		func() (err error) { lvstores, err = n.c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{}); return },
		func() (err error) { lvols, err = n.c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsParams{}); return },
	)
	if err != nil {
		return err
	}
	s.setBdevs(bdevs)
	s.setLvstores(lvstores)
	s.setLvols(lvols)
	return nil
}

func (s *dnSnapshot) setBdevs(bdevs []spdk.Bdev) {
	s.bdevs = make(map[string]*spdk.Bdev, 2*len(bdevs))
	for i := range bdevs {
		b := &bdevs[i]
		for _, k := range append([]string{b.Name, b.UUID}, b.Aliases...) {
			if _, dup := s.bdevs[k]; k != "" && !dup {
				s.bdevs[k] = b
			}
		}
		s.bdevs[b.Name] = b // a name always wins over another bdev's alias
	}
}

func (s *dnSnapshot) setLvstores(all []spdk.Lvstore) {
	s.lvstores = make(map[string]spdk.Lvstore, len(all))
	for _, ls := range all {
		s.lvstores[ls.Name] = ls
	}
}

func (s *dnSnapshot) setLvols(all []spdk.Lvol) {
	s.lvols = make(map[string]spdk.Lvol, len(all))
	s.lvolPlaces = make(map[string][]string, len(all))
	for _, l := range all {
		alias := nvmeof.LvolAlias(l.Lvs.Name, l.Name)
		s.lvols[alias] = l
		s.lvolPlaces[l.Name] = append(s.lvolPlaces[l.Name], alias)
	}
}

// bdev returns the bdev whose name (not alias) is name.
func (s *dnSnapshot) bdev(name string) *spdk.Bdev {
	if b := s.bdevs[name]; b != nil && b.Name == name {
		return b
	}
	return nil
}

// lvstoreOn returns the lvstore whose base bdev is name.
func (s *dnSnapshot) lvstoreOn(name string) (spdk.Lvstore, bool) {
	for _, ls := range s.lvstores {
		if ls.BaseBdev == name {
			return ls, true
		}
	}
	return spdk.Lvstore{}, false
}

// together runs fns concurrently and joins their errors.
func together(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ownedID returns the ID of an owned name of kind k, or "".
func ownedID(name string, k nvmeof.Kind) string {
	if n, ok := nvmeof.ParseName(name); ok && n.Kind == k && n.NSID == 0 {
		return n.ID
	}
	return ""
}

// bdevMismatch describes an existing bdev under a PD's name that is not
// what the PD's configuration asks for.
func bdevMismatch(name, format string, args ...any) error {
	return fmt.Errorf("%w: bdev %s %s; not touching it", errDNState, name, fmt.Sprintf(format, args...))
}
