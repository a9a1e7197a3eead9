package spdktest

import (
	"encoding/json"
	"errors"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"slices"
	"strings"
	"time"
)

func init() {
	register("bdev_examine", phaseRuntime, bdevExamine)
	registerUnlocked("bdev_wait_for_examine", phaseRuntime, bdevWaitForExamine)
	register("bdev_lvol_create_lvstore", phaseRuntime, lvolCreateLvstore)
	register("bdev_lvol_get_lvstores", phaseRuntime, lvolGetLvstores)
	register("bdev_lvol_delete_lvstore", phaseRuntime, lvolDeleteLvstore)
}

const maxLvolName = 63

// lvstore is a loaded lvstore: the on-disk format lives in blockdev, the
// bdevs of its lvols here.
type lvstore struct {
	ls      *blockdev.Lvstore
	base    *bdev
	lvols   map[*bdev]*blockdev.Lvol
	newName string // SPDK's lvs->new_name: "" until renamed
	// pending holds the names of lvols being created (lvs->pending_lvols).
	pending map[string]bool
}

type lvstoreJSON struct {
	UUID              string `json:"uuid"`
	Name              string `json:"name"`
	BaseBdev          string `json:"base_bdev"`
	TotalDataClusters uint64 `json:"total_data_clusters"`
	FreeClusters      uint64 `json:"free_clusters"`
	BlockSize         uint32 `json:"block_size"`
	ClusterSize       uint64 `json:"cluster_size"`
}

func (l *lvstore) json() lvstoreJSON {
	return lvstoreJSON{
		UUID: l.ls.UUID(), Name: l.ls.Name(), BaseBdev: l.base.name,
		TotalDataClusters: l.ls.TotalDataClusters(), FreeClusters: l.ls.FreeClusters(),
		BlockSize: l.base.blockSize, ClusterSize: l.ls.ClusterSize(),
	}
}

// examJob is one pending examine.
type examJob struct {
	b       *bdev
	timer   *time.Timer
	started bool          // runExam took it (s.mu)
	done    chan struct{} // closed when it has finished
}

// scheduleExamine loads an lvstore from b after the examine delay.
func (s *state) scheduleExamine(b *bdev) {
	if len(s.pendingExams) == 0 {
		select {
		case <-s.examDone: // the last round is over: start a new one
			s.examDone = make(chan struct{})
		default: // an examine is scheduling more (auto examine of its lvols): same round
		}
	}
	j := &examJob{b: b, done: make(chan struct{})}
	s.pendingExams = append(s.pendingExams, j)
	j.timer = time.AfterFunc(s.cfg.ExamineDelay, func() { s.runExam(j) })
}

// runExam runs j unless it already started. The metadata is read without
// the state lock, as SPDK's examine reads asynchronously while it goes on
// answering RPCs; the examine stays pending (bdev_wait_for_examine waits)
// until the lvstore it found is loaded.
func (s *state) runExam(j *examJob) {
	s.mu.Lock()
	if j.started || !slices.Contains(s.pendingExams, j) {
		s.mu.Unlock()
		return
	}
	j.started = true
	var dev blockdev.Device
	if s.examinable(j.b) {
		dev = j.b.device()
	}
	claims := j.b.claims
	s.mu.Unlock()
	var ls *blockdev.Lvstore
	if dev != nil {
		ls, _ = blockdev.LoadLvstore(dev) // no lvstore (or unreadable): nothing to load
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Claimed meanwhile (and maybe released again: an lvstore created on it
	// and deleted): what was read is stale, and SPDK's examine would have
	// failed to claim the base.
	if ls != nil && j.b.claims == claims {
		s.loadExamined(j.b, ls)
	}
	close(j.done)
	if i := slices.Index(s.pendingExams, j); i >= 0 {
		s.pendingExams = slices.Delete(s.pendingExams, i, i+1)
		if len(s.pendingExams) == 0 {
			close(s.examDone)
		}
	}
}

// CompleteExamines finishes every pending bdev_examine now instead of after
// the examine delay, so tests can step past the asynchronous window
// deterministically.
func (t *Target) CompleteExamines() {
	t.mu.Lock()
	in := t.cur
	t.mu.Unlock()
	if in == nil {
		return
	}
	s := in.st
	for {
		s.mu.Lock()
		if len(s.pendingExams) == 0 {
			s.mu.Unlock()
			return
		}
		j := s.pendingExams[0]
		s.mu.Unlock()
		j.timer.Stop()
		s.runExam(j) // or wait for the run its timer started
		select {
		case <-j.done:
		case <-in.done:
			return
		}
	}
}

// PendingExamines returns how many bdev_examine runs have not finished.
func (t *Target) PendingExamines() int {
	t.mu.Lock()
	in := t.cur
	t.mu.Unlock()
	if in == nil {
		return 0
	}
	in.st.mu.Lock()
	defer in.st.mu.Unlock()
	return len(in.st.pendingExams)
}

// examinable reports whether examine may load an lvstore from b: it is
// still registered, unclaimed and not an lvol (caller holds s.mu).
func (s *state) examinable(b *bdev) bool {
	select {
	case <-s.in.done:
		return false
	default:
	}
	return s.lookup(b.name) == b && b.claim == "" && b.product != "Logical Volume"
}

// loadExamined loads ls, read from b, unless b changed meanwhile (caller
// holds s.mu).
func (s *state) loadExamined(b *bdev, ls *blockdev.Lvstore) {
	if !s.examinable(b) {
		return
	}
	if s.lvsNameTaken(ls.Name()) || s.lvsByUUID[ls.UUID()] != nil {
		s.in.log.Warn("examine: lvstore already loaded", "lvs", ls.Name())
		return
	}
	l := &lvstore{ls: ls, base: b, lvols: map[*bdev]*blockdev.Lvol{}}
	claimBdev(b, claimReadManyWriteOne, "lvol")
	s.addLvstore(l)
	for _, lv := range ls.Lvols() {
		if _, err := s.addLvolBdev(l, lv); err != nil {
			s.in.log.Warn("examine: lvol name clash", "lvol", lv.Name())
		}
	}
}

func bdevExamine(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, rpcErr(codeInvalidParams, err.Message)
	}
	if s.autoExamine {
		return nil, errInval
	}
	if s.examined[p.Name] {
		return nil, errExists
	}
	s.examined[p.Name] = true
	if b := s.lookup(p.Name); b != nil {
		s.examined[b.name] = true
		s.scheduleExamine(b)
	}
	return true, nil
}

// bdevWaitForExamine answers once no examine is pending (asynchronously when
// some are).
func bdevWaitForExamine(s *state, params json.RawMessage) (any, *Error) {
	if err := noParams("bdev_wait_for_examine", params); err != nil {
		return nil, err
	}
	s.mu.Lock()
	done := s.examDone
	s.mu.Unlock()
	select {
	case <-done:
		return true, nil
	default:
	}
	return async(func() (any, *Error) {
		select {
		case <-done:
		case <-s.in.done:
		}
		return true, nil
	}), nil
}

// clearMethod parses a clear_method as SPDK does (case-insensitively).
func clearMethod(m string) (string, bool) {
	m = strings.ToLower(m)
	switch m {
	case blockdev.ClearNone, blockdev.ClearUnmap, blockdev.ClearWriteZeroes:
		return m, true
	}
	return "", false
}

func lvolCreateLvstore(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		BdevName    string  `json:"bdev_name"`
		LvsName     string  `json:"lvs_name"`
		ClusterSz   uint32  `json:"cluster_sz"`
		ClearMethod *string `json:"clear_method"`
		MDRatio     uint32  `json:"num_md_pages_per_cluster_ratio"`
	}
	if err := decodeParams(params, &p, "bdev_name", "lvs_name"); err != nil {
		return nil, err
	}
	clear := blockdev.ClearUnmap
	if p.ClearMethod != nil {
		var ok bool
		if clear, ok = clearMethod(*p.ClearMethod); !ok {
			return nil, rpcErr(-22, "Invalid clear_method parameter")
		}
	}
	// vbdev_lvs_create, then spdk_lvs_init: what fails before the
	// blobstore is written answers with the errno; what spdk_bs_init
	// refuses comes back through the callback as -32602.
	if len(p.LvsName) > maxLvolName || p.LvsName == "" {
		return nil, errInval
	}
	b := s.lookup(p.BdevName)
	if b == nil {
		return nil, errNoDevice
	}
	if b.claim != "" {
		return nil, errPerm
	}
	cluster := uint64(p.ClusterSz)
	if cluster == 0 {
		cluster = blockdev.DefaultClusterSize
	}
	if cluster < uint64(b.blockSize) {
		return nil, errInval
	}
	if s.lvsNameTaken(p.LvsName) {
		return nil, errExists
	}
	// spdk_lvs_init puts the store on the global list (its name taken) and
	// spdk_bs_init writes the blobstore in the background: the RPC thread
	// serves other requests meanwhile, and several stores are written at
	// once. The store is listed, and its base claimed, when the write
	// completes (_vbdev_lvs_create_cb).
	s.lvsPending[p.LvsName] = true
	dev, uuid := b.device(), newUUID()
	return async(func() (any, *Error) {
		ls, err := blockdev.CreateLvstore(dev, blockdev.LvstoreOptions{
			Name: p.LvsName, UUID: uuid, ClusterSize: cluster,
			ClearMethod: clear, MDPagesPerClusterRatio: p.MDRatio,
		})
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.lvsPending, p.LvsName)
		if err != nil {
			return nil, asyncErr(err)
		}
		if s.lookup(b.name) != b {
			// Hot-removed while written: its I/O channel is gone.
			return nil, asyncErr(blockdev.ErrNotFound)
		}
		if b.claim != "" {
			// spdk_bs_bdev_claim fails: claimed meanwhile by another module.
			return nil, asyncErr(blockdev.ErrReadOnly)
		}
		claimBdev(b, claimReadManyWriteOne, "lvol")
		s.addLvstore(&lvstore{ls: ls, base: b, lvols: map[*bdev]*blockdev.Lvol{}})
		return ls.UUID(), nil
	}), nil
}

// lvsNameTaken reports whether an lvstore has name or is being created
// under it (caller holds s.mu): SPDK's g_lvol_stores holds both.
func (s *state) lvsNameTaken(name string) bool {
	return s.lvsByName[name] != nil || s.lvsPending[name]
}

// errnoOf maps a blockdev error to SPDK's errno reply.
func errnoOf(err error) *Error {
	switch {
	case errors.Is(err, blockdev.ErrNoSpace):
		return rpcErr(-28, "No space left on device")
	case errors.Is(err, blockdev.ErrNoMemory):
		return rpcErr(-12, "Cannot allocate memory")
	case errors.Is(err, blockdev.ErrExists):
		return errExists
	case errors.Is(err, blockdev.ErrNotFound):
		return errNoDevice
	case errors.Is(err, blockdev.ErrBusy):
		return rpcErr(-16, "Device or resource busy")
	case errors.Is(err, blockdev.ErrReadOnly):
		return errPerm
	}
	return errInval
}

// findLvstore finds an lvstore by name or uuid (one of them empty).
func (s *state) findLvstore(name, uuid string) *lvstore {
	if l := s.lvsByName[name]; name != "" && l != nil {
		return l
	}
	if uuid != "" {
		if u, ok := parseUUID(uuid); ok {
			return s.lvsByUUID[formatUUID(u)]
		}
	}
	return nil
}

// addLvstore registers l (its uuid never changes; bdev_lvol_rename_lvstore
// re-keys its name).
func (s *state) addLvstore(l *lvstore) {
	s.lvstores = append(s.lvstores, l)
	s.lvsByName[l.ls.Name()] = l
	s.lvsByUUID[l.ls.UUID()] = l
}

// lvstoreXor resolves SPDK's "uuid or lvs_name" parameter pair
// (vbdev_get_lvol_store_by_uuid_xor_name): exactly one must be given, and
// a given one must name an lvstore, even when empty.
func (s *state) lvstoreXor(name, uuid *string) (*lvstore, *Error) {
	if (name == nil) == (uuid == nil) {
		return nil, errInval
	}
	var l *lvstore
	if name != nil {
		l = s.lvsByName[*name]
	} else {
		l = s.findLvstore("", *uuid)
	}
	if l == nil {
		return nil, errNoDevice
	}
	return l, nil
}

func lvolGetLvstores(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		UUID    *string `json:"uuid"`
		LvsName *string `json:"lvs_name"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	if params == nil {
		out := make([]lvstoreJSON, 0, len(s.lvstores))
		for _, l := range s.lvstores {
			out = append(out, l.json())
		}
		return out, nil
	}
	l, rerr := s.lvstoreXor(p.LvsName, p.UUID)
	if rerr != nil {
		return nil, rerr
	}
	return []lvstoreJSON{l.json()}, nil
}

func lvolDeleteLvstore(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		UUID    *string `json:"uuid"`
		LvsName *string `json:"lvs_name"`
	}
	if params == nil {
		return nil, errDecode
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	l, rerr := s.lvstoreXor(p.LvsName, p.UUID)
	if rerr != nil {
		return nil, rerr
	}
	s.unloadLvstore(l)
	// Destroying the lvstore wipes its metadata, so examine finds nothing.
	if err := l.ls.Destroy(); err != nil {
		s.in.log.Warn("lvstore destroy", "lvs", l.ls.Name(), "error", err)
	}
	releaseBdev(l.base)
	return true, nil
}

// unloadLvstore hot-removes the lvol bdevs of l and forgets l; the metadata
// stays on the base.
func (s *state) unloadLvstore(l *lvstore) {
	for _, b := range append([]*bdev(nil), s.bdevs...) {
		if _, ok := l.lvols[b]; ok {
			s.unregisterBdev(b)
		}
	}
	if i := slices.Index(s.lvstores, l); i >= 0 {
		s.lvstores = slices.Delete(s.lvstores, i, i+1)
		delete(s.lvsByName, l.ls.Name())
		delete(s.lvsByUUID, l.ls.UUID())
	}
}

func (s *state) lvstoreBaseRemoved(b *bdev) {
	if b.claimedBy != "lvol" {
		return // no lvstore on it: loading or creating one claims the base
	}
	for _, l := range append([]*lvstore(nil), s.lvstores...) {
		if l.base == b {
			s.unloadLvstore(l)
		}
	}
}
