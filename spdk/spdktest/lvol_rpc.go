package spdktest

import (
	"encoding/json"
	"errors"
	"fmt"

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
	register("bdev_lvol_inflate", phaseRuntime, lvolInflate(true))
	register("bdev_lvol_decouple_parent", phaseRuntime, lvolInflate(false))
	register("bdev_lvol_set_read_only", phaseRuntime, lvolSetReadOnly)
	register("bdev_lvol_rename_lvstore", phaseRuntime, lvolRenameLvstore)
}

// The lvol RPCs of module/bdev/lvol/vbdev_lvol_rpc.c: a decoding failure is
// -32603 "spdk_json_decode_object failed"; what the handler checks itself
// answers with the errno (-19 unknown lvol, -22, -17); what fails in the
// lvol library's completion callback answers -32602 with the errno's text
// (bdev_lvol_delete's callback: -32603).

const productLvol = "Logical Volume"

// addLvolBdev registers the bdev of lv: named by its uuid, aliased
// "<lvs>/<lvol>".
func (s *state) addLvolBdev(l *lvstore, lv *blockdev.Lvol) (*bdev, *Error) {
	b := &bdev{
		name: lv.UUID(), uuid: lv.UUID(), aliases: []string{l.ls.Name() + "/" + lv.Name()},
		product: productLvol, blockSize: lv.BlockSize(), numBlocks: lv.NumBlocks(),
		io: ioLvol, memDomains: l.base.memDomains, dev: lv,
	}
	if lv.ReadOnly() {
		b.io = ioSnapshot
	}
	b.driver = func() any { return lvolDriver(l, lv) }
	if err := s.registerBdev(b); err != nil {
		return nil, err
	}
	l.lvols[b] = lv
	return b, nil
}

// lvolDriver is an lvol bdev's driver_specific (vbdev_lvol_dump_info_json).
func lvolDriver(l *lvstore, lv *blockdev.Lvol) obj {
	d := obj{
		{"lvol_store_uuid", l.ls.UUID()}, {"base_bdev", l.base.name},
		{"thin_provision", lv.Thin()}, {"snapshot", lv.IsSnapshot()}, {"clone", lv.IsClone()},
	}
	if lv.IsClone() {
		d = append(d, kv{"base_snapshot", lv.Parent()})
	}
	if lv.IsSnapshot() {
		d = append(d, kv{"clones", lv.Clones()})
	}
	d = append(d, kv{"esnap_clone", false})
	return obj{{"lvol", d}}
}

// namedLvol decodes the params of a method that takes only an lvol's
// "name" (bdev name, UUID or alias) and finds it (ENODEV if none).
func (s *state) namedLvol(params json.RawMessage) (*lvstore, *bdev, *blockdev.Lvol, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, nil, nil, err
	}
	l, b, lv := s.findLvol(p.Name)
	if lv == nil {
		return nil, nil, nil, errNoDevice
	}
	return l, b, lv, nil
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

// refresh re-reads every lvol bdev of l after a change (sizes, read-only
// flags).
func (l *lvstore) refresh() {
	for b, lv := range l.lvols {
		b.numBlocks = lv.NumBlocks()
		b.io = ioLvol
		if lv.ReadOnly() {
			b.io = ioSnapshot
		}
	}
}

// lvolSize resolves the size / size_in_mib pair of bdev_lvol_create and
// bdev_lvol_resize (a zero counts as absent; MiB wrap around as in C).
func lvolSize(size, sizeMiB uint64) (uint64, *Error) {
	switch {
	case size > 0 && sizeMiB > 0:
		return 0, rpcErr(codeInternalError, "size is deprecated. Specify only size_in_mib instead.")
	case sizeMiB > 0:
		return sizeMiB * 1024 * 1024, nil
	}
	return size, nil
}

// asyncErr is how lvol RPCs report failures from their completion
// callbacks: -32602 with the errno text.
func asyncErr(err error) *Error {
	return rpcErr(codeInvalidParams, errnoOf(err).Message)
}

// checkLvolName is lvs_verify_lvol_name: 1 to 63 characters, unused in
// the lvstore.
func checkLvolName(l *lvstore, name *string) *Error {
	if name == nil || *name == "" || len(*name) > maxLvolName {
		return errInval
	}
	if l.pending[*name] {
		return errExists // being created
	}
	for _, lv := range l.ls.Lvols() {
		if lv.Name() == *name {
			return errExists
		}
	}
	return nil
}

func lvolCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		UUID        *string `json:"uuid"`
		LvsName     *string `json:"lvs_name"`
		LvolName    string  `json:"lvol_name"`
		Size        uint64  `json:"size"`
		SizeInMiB   uint64  `json:"size_in_mib"`
		Thin        bool    `json:"thin_provision"`
		ClearMethod *string `json:"clear_method"`
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
	clear := ""
	if p.ClearMethod != nil {
		var ok bool
		if clear, ok = clearMethod(*p.ClearMethod); !ok {
			return nil, rpcErr(-22, "Invalid clean_method option")
		}
	}
	if rerr := checkLvolName(l, &p.LvolName); rerr != nil {
		return nil, rerr
	}
	if l.ls.TotalDataClusters() == 0 {
		return nil, rpcErr(codeInvalidParams, "Cannot allocate memory")
	}
	// spdk_lvol_create takes the name (pending_lvols) and creates, sizes
	// and syncs the blob in the background: the RPC thread serves other
	// requests meanwhile, and lvols of other stores are created at once.
	if l.pending == nil {
		l.pending = map[string]bool{}
	}
	l.pending[p.LvolName] = true
	uuid := newUUID()
	return async(func() (any, *Error) {
		lv, err := l.ls.CreateLvol(p.LvolName, uuid, size, p.Thin, clear)
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(l.pending, p.LvolName)
		if err != nil {
			return nil, asyncErr(err)
		}
		if s.lvsByUUID[l.ls.UUID()] != l {
			// The store was unloaded meanwhile: the blob is on its base
			// (examine finds it) but no bdev is registered.
			return nil, asyncErr(blockdev.ErrNotFound)
		}
		if _, rerr := s.addLvolBdev(l, lv); rerr != nil {
			_ = l.ls.Delete(lv.Name())
			return nil, asyncErr(blockdev.ErrExists)
		}
		return lv.UUID(), nil
	}), nil
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
		LvsUUID *string `json:"lvs_uuid"`
		LvsName *string `json:"lvs_name"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	stores := s.lvstores
	if params != nil {
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
	l, b, lv, rerr := s.namedLvol(params)
	if rerr != nil {
		return nil, rerr
	}
	if len(lv.Clones()) > 1 {
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
		Name      string `json:"name"`
		Size      uint64 `json:"size"`
		SizeInMiB uint64 `json:"size_in_mib"`
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
	if size < lv.NumBlocks()*uint64(lv.BlockSize()) && b.claim != "" && !lv.ReadOnly() {
		return nil, rpcErr(codeInvalidParams, "Device or resource busy")
	}
	if err := l.ls.Resize(lv.Name(), size); err != nil {
		return nil, asyncErr(err)
	}
	l.refresh()
	s.bdevResized(b)
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
	if rerr := checkLvolName(l, &p.SnapshotName); rerr != nil {
		return nil, rpcErr(codeInvalidParams, rerr.Message)
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
		SnapshotName string  `json:"snapshot_name"`
		CloneName    *string `json:"clone_name"`
	}
	if err := decodeParams(params, &p, "snapshot_name"); err != nil {
		return nil, err
	}
	l, _, snap := s.findLvol(p.SnapshotName)
	if snap == nil {
		return nil, errNoDevice
	}
	if rerr := checkLvolName(l, p.CloneName); rerr != nil {
		return nil, rpcErr(codeInvalidParams, rerr.Message)
	}
	c, err := l.ls.Clone(snap.Name(), *p.CloneName, newUUID())
	if err != nil {
		return nil, asyncErr(err)
	}
	if _, rerr := s.addLvolBdev(l, c); rerr != nil {
		return nil, rpcErr(codeInvalidParams, rerr.Message)
	}
	l.refresh()
	return c.UUID(), nil
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
	if lv.Name() == p.NewName {
		return true, nil
	}
	alias := l.ls.Name() + "/" + p.NewName
	if o := s.lookup(alias); o != nil && o != b {
		return nil, rpcErr(codeInvalidParams, errExists.Message)
	}
	if err := l.ls.Rename(lv.Name(), p.NewName); err != nil {
		if errors.Is(err, blockdev.ErrReadOnly) {
			// vbdev_lvol_rename moved the bdev's alias before the lvol
			// library refused, and does not move it back.
			s.realias(b, alias)
		}
		return nil, asyncErr(err)
	}
	s.realias(b, alias)
	return true, nil
}

// realias replaces b's aliases by alias.
func (s *state) realias(b *bdev, alias string) {
	for _, a := range b.aliases {
		if s.byName[a] == b {
			delete(s.byName, a)
		}
	}
	b.aliases = []string{alias}
	s.byName[alias] = b
	s.appeared(alias)
}

// lvolInflate is bdev_lvol_inflate (all) and bdev_lvol_decouple_parent.
func lvolInflate(all bool) handlerFunc {
	return func(s *state, params json.RawMessage) (any, *Error) {
		l, _, lv, rerr := s.namedLvol(params)
		if rerr != nil {
			return nil, rerr
		}
		var err error
		if all {
			err = l.ls.Inflate(lv.Name())
		} else {
			err = l.ls.DecoupleParent(lv.Name())
		}
		if err != nil {
			return nil, asyncErr(err)
		}
		l.refresh()
		return true, nil
	}
}

func lvolSetReadOnly(s *state, params json.RawMessage) (any, *Error) {
	l, _, lv, rerr := s.namedLvol(params)
	if rerr != nil {
		return nil, rerr
	}
	if err := l.ls.SetReadOnly(lv.Name()); err != nil {
		return nil, asyncErr(err)
	}
	l.refresh()
	return true, nil
}

func lvolRenameLvstore(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		OldName string `json:"old_name"`
		NewName string `json:"new_name"`
	}
	if err := decodeParams(params, &p, "old_name", "new_name"); err != nil {
		return nil, err
	}
	l := s.lvsByName[p.OldName]
	if l == nil {
		return nil, rpcErr(-2, fmt.Sprintf("Lvol store %s not found", p.OldName))
	}
	newName := p.NewName
	if len(newName) > maxLvolName {
		newName = newName[:maxLvolName] // snprintf into char[64]
	}
	if newName == p.OldName {
		return true, nil
	}
	// spdk_lvs_rename compares with every store's name and new_name, which
	// is empty until the store was renamed: an empty name always clashes.
	for _, o := range s.lvstores {
		if o.ls.Name() == newName || o.newName == newName {
			return nil, rpcErr(codeInvalidParams, errExists.Message)
		}
	}
	if s.lvsPending[newName] || (newName == "" && len(s.lvsPending) > 0) {
		return nil, rpcErr(codeInvalidParams, errExists.Message) // a store being created
	}
	p.NewName = newName
	l.newName = newName
	if err := l.ls.SetName(p.NewName); err != nil {
		return nil, asyncErr(err)
	}
	delete(s.lvsByName, p.OldName)
	s.lvsByName[p.NewName] = l
	for b, lv := range l.lvols {
		s.realias(b, p.NewName+"/"+lv.Name())
	}
	return true, nil
}
