package spdktest

import (
	"encoding/json"
	"errors"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

func init() {
	register("bdev_lvol_create", phaseRuntime, lvolCreate)
	register("bdev_lvol_get_lvols", phaseRuntime, lvolGetLvols)
	register("bdev_lvol_delete", phaseRuntime, lvolDelete)
	register("bdev_lvol_resize", phaseRuntime, lvolResize)
	register("bdev_lvol_snapshot", phaseRuntime, lvolSnapshot)
	register("bdev_lvol_clone", phaseRuntime, lvolClone)
	register("bdev_lvol_rename", phaseRuntime, lvolRename)
}

func lvolRename(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		OldName string `json:"old_name"`
		NewName string `json:"new_name"`
	}
	if err := decodeParams(params, &p, "old_name", "new_name"); err != nil {
		return nil, err
	}
	l, b, lv := s.findLvol(p.OldName)
	if lv == nil {
		return nil, errNoDevice
	}
	alias := l.ls.Name() + "/" + p.NewName
	if len(p.NewName) > maxLvolName || p.NewName == "" {
		return nil, errInval
	}
	if _, taken := l.ls.Lvol(p.NewName); taken || s.lookup(alias) != nil {
		return nil, errExists
	}
	if err := l.ls.Rename(lv.Name(), p.NewName); err != nil {
		return nil, errnoOf(err)
	}
	for _, a := range b.aliases {
		delete(s.byName, a)
	}
	b.aliases = []string{alias}
	s.byName[alias] = b
	return true, nil
}

const productLvol = "Logical Volume"

// addLvolBdev registers the bdev of lv: named by its uuid, aliased
// "<lvs>/<lvol>".
func (s *state) addLvolBdev(l *lvstore, lv *blockdev.Lvol) (*bdev, *Error) {
	b := &bdev{
		name: lv.UUID(), uuid: lv.UUID(), aliases: []string{l.ls.Name() + "/" + lv.Name()},
		product: productLvol, blockSize: lv.BlockSize(), numBlocks: lv.NumBlocks(),
		io: ioLvol, memDomains: l.base.memDomains, dev: lv,
	}
	if lv.IsSnapshot() {
		b.io = ioSnapshot
	}
	b.driver = func() any { return lvolDriver(l, lv) }
	if err := s.registerBdev(b); err != nil {
		return nil, err
	}
	l.lvols[b] = lv
	return b, nil
}

func lvolDriver(l *lvstore, lv *blockdev.Lvol) obj {
	d := obj{
		{"lvol_store_uuid", l.ls.UUID()}, {"base_bdev", l.base.name},
		{"thin_provision", lv.Thin()}, {"snapshot", lv.IsSnapshot()}, {"clone", lv.IsClone()},
	}
	if lv.IsSnapshot() {
		clones := lv.Clones()
		if clones == nil {
			clones = []string{}
		}
		d = append(d, kv{"clones", clones})
	}
	if lv.IsClone() {
		d = append(d, kv{"base_snapshot", lv.Parent()})
	}
	d = append(d, kv{"esnap_clone", false})
	return obj{{"lvol", d}}
}

// findLvol resolves an lvol by uuid or "<lvs>/<lvol>" alias.
func (s *state) findLvol(name string) (*lvstore, *bdev, *blockdev.Lvol) {
	b := s.lookup(name)
	if b == nil || b.product != productLvol {
		return nil, nil, nil
	}
	for _, l := range s.lvstores {
		if lv, ok := l.lvols[b]; ok {
			return l, b, lv
		}
	}
	return nil, nil, nil
}

// refreshLvols re-reads every lvol bdev of l after a change (sizes,
// snapshot flags).
func (l *lvstore) refresh() {
	for b, lv := range l.lvols {
		b.numBlocks = lv.NumBlocks()
		b.io = ioLvol
		if lv.IsSnapshot() {
			b.io = ioSnapshot
		}
	}
}

// lvolSize resolves the size / size_in_mib pair of bdev_lvol_create and
// bdev_lvol_resize.
func lvolSize(size, sizeMiB *uint64) (uint64, *Error) {
	if size != nil && sizeMiB != nil {
		return 0, rpcErr(codeInternalError, "size is deprecated. Specify only size_in_mib instead.")
	}
	if sizeMiB != nil {
		return *sizeMiB << 20, nil
	}
	if size != nil {
		return *size, nil
	}
	return 0, nil
}

func lvolCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		LvolName    string  `json:"lvol_name"`
		LvsName     string  `json:"lvs_name"`
		UUID        string  `json:"uuid"`
		Size        *uint64 `json:"size"`
		SizeInMiB   *uint64 `json:"size_in_mib"`
		Thin        bool    `json:"thin_provision"`
		ClearMethod string  `json:"clear_method"`
	}
	if err := decodeParams(params, &p, "lvol_name"); err != nil {
		return nil, err
	}
	size, rerr := lvolSize(p.Size, p.SizeInMiB)
	if rerr != nil {
		return nil, rerr
	}
	l, rerr := s.lvstoreXor(p.LvsName, p.UUID)
	if rerr != nil {
		return nil, rerr
	}
	if p.ClearMethod != "" && !clearMethods[p.ClearMethod] {
		return nil, rpcErr(-22, "Invalid clean_method option")
	}
	if len(p.LvolName) > maxLvolName || p.LvolName == "" {
		return nil, errInval
	}
	if _, ok := l.ls.Lvol(p.LvolName); ok {
		return nil, errExists
	}
	if l.ls.TotalDataClusters() == 0 {
		return nil, rpcErr(codeInvalidParams, "Cannot allocate memory")
	}
	lv, err := l.ls.CreateLvol(p.LvolName, newUUID(), size, p.Thin, p.ClearMethod)
	if err != nil {
		return nil, asyncErr(err)
	}
	if _, rerr := s.addLvolBdev(l, lv); rerr != nil {
		_ = l.ls.Delete(lv.Name())
		return nil, asyncErr(errors.New("exists"))
	}
	return lv.UUID(), nil
}

// asyncErr is how lvol RPCs report failures from their completion
// callbacks: -32602 with the errno text.
func asyncErr(err error) *Error {
	e := errnoOf(err)
	if errors.Is(err, blockdev.ErrExists) || err.Error() == "exists" {
		e = errExists
	}
	return rpcErr(codeInvalidParams, e.Message)
}

type lvsRef struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type lvolJSON struct {
	Alias        string `json:"alias"`
	UUID         string `json:"uuid"`
	Name         string `json:"name"`
	Thin         bool   `json:"is_thin_provisioned"`
	IsSnapshot   bool   `json:"is_snapshot"`
	IsClone      bool   `json:"is_clone"`
	IsEsnapClone bool   `json:"is_esnap_clone"`
	IsDegraded   bool   `json:"is_degraded"`
	Lvs          lvsRef `json:"lvs"`
}

func lvolGetLvols(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		LvsUUID string `json:"lvs_uuid"`
		LvsName string `json:"lvs_name"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	stores := s.lvstores
	if p.LvsUUID != "" || p.LvsName != "" {
		l, rerr := s.lvstoreXor(p.LvsName, p.LvsUUID)
		if rerr != nil {
			return nil, rerr
		}
		stores = []*lvstore{l}
	}
	out := []lvolJSON{}
	for _, l := range stores {
		for _, lv := range l.ls.Lvols() {
			out = append(out, lvolJSON{
				Alias: l.ls.Name() + "/" + lv.Name(), UUID: lv.UUID(), Name: lv.Name(),
				Thin: lv.Thin(), IsSnapshot: lv.IsSnapshot(), IsClone: lv.IsClone(),
				Lvs: lvsRef{Name: l.ls.Name(), UUID: l.ls.UUID()},
			})
		}
	}
	return out, nil
}

func lvolDelete(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	l, b, lv := s.findLvol(p.Name)
	if lv == nil {
		return nil, errNoDevice
	}
	if lv.IsSnapshot() && len(lv.Clones()) > 1 {
		return nil, rpcErr(codeInternalError, "Operation not permitted")
	}
	if err := l.ls.Delete(lv.Name()); err != nil {
		return nil, rpcErr(codeInternalError, errnoOf(err).Message)
	}
	delete(l.lvols, b)
	s.unregisterBdev(b)
	l.refresh()
	return true, nil
}

func lvolResize(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name      string  `json:"name"`
		Size      *uint64 `json:"size"`
		SizeInMiB *uint64 `json:"size_in_mib"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	size, rerr := lvolSize(p.Size, p.SizeInMiB)
	if rerr != nil {
		return nil, rerr
	}
	l, b, lv := s.findLvol(p.Name)
	if lv == nil {
		return nil, errNoDevice
	}
	if size < lv.NumBlocks()*uint64(lv.BlockSize()) && b.claim != "" {
		return nil, rpcErr(codeInvalidParams, "Device or resource busy")
	}
	if err := l.ls.Resize(lv.Name(), size); err != nil {
		return nil, asyncErr(err)
	}
	l.refresh()
	return true, nil
}

func lvolSnapshot(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		LvolName     string `json:"lvol_name"`
		SnapshotName string `json:"snapshot_name"`
	}
	if err := decodeParams(params, &p, "lvol_name", "snapshot_name"); err != nil {
		return nil, err
	}
	l, _, lv := s.findLvol(p.LvolName)
	if lv == nil {
		return nil, errNoDevice
	}
	if _, ok := l.ls.Lvol(p.SnapshotName); ok {
		return nil, rpcErr(codeInvalidParams, "File exists")
	}
	snap, err := l.ls.Snapshot(lv.Name(), p.SnapshotName, newUUID())
	if err != nil {
		return nil, asyncErr(err)
	}
	if _, rerr := s.addLvolBdev(l, snap); rerr != nil {
		return nil, rpcErr(codeInvalidParams, rerr.Message)
	}
	l.refresh()
	return snap.UUID(), nil
}

func lvolClone(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		SnapshotName string `json:"snapshot_name"`
		CloneName    string `json:"clone_name"`
	}
	if err := decodeParams(params, &p, "snapshot_name"); err != nil {
		return nil, err
	}
	l, _, snap := s.findLvol(p.SnapshotName)
	if snap == nil {
		return nil, errNoDevice
	}
	if !snap.IsSnapshot() || p.CloneName == "" {
		return nil, rpcErr(codeInvalidParams, "Invalid argument")
	}
	if _, ok := l.ls.Lvol(p.CloneName); ok {
		return nil, rpcErr(codeInvalidParams, "File exists")
	}
	c, err := l.ls.Clone(snap.Name(), p.CloneName, newUUID())
	if err != nil {
		return nil, asyncErr(err)
	}
	if _, rerr := s.addLvolBdev(l, c); rerr != nil {
		return nil, rpcErr(codeInvalidParams, rerr.Message)
	}
	l.refresh()
	return c.UUID(), nil
}
