package spdktest

import (
	"crypto/rand"
	"fmt"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"strings"
	"sync"
	"time"
)

// Claim types as bdev_get_bdevs prints them.
const (
	claimExclusiveWrite   = "exclusive_write"
	claimReadManyWriteOne = "read_many_write_one"
)

// tickRate is the TSC rate the fake reports (the recording VM's 2.1 GHz).
const tickRate = 2100000000

// ioTypes is supported_io_types in SPDK's key order.
type ioTypes struct {
	Read            bool `json:"read"`
	Write           bool `json:"write"`
	Unmap           bool `json:"unmap"`
	WriteZeroes     bool `json:"write_zeroes"`
	Flush           bool `json:"flush"`
	Reset           bool `json:"reset"`
	Compare         bool `json:"compare"`
	CompareAndWrite bool `json:"compare_and_write"`
	Abort           bool `json:"abort"`
	NvmeAdmin       bool `json:"nvme_admin"`
	NvmeIO          bool `json:"nvme_io"`
}

var (
	ioMalloc   = ioTypes{Read: true, Write: true, Unmap: true, WriteZeroes: true, Flush: true, Reset: true, Abort: true}
	ioAIO      = ioTypes{Read: true, Write: true, WriteZeroes: true, Flush: true, Reset: true}
	ioNull     = ioTypes{Read: true, Write: true, WriteZeroes: true, Reset: true, Abort: true}
	ioLvol     = ioTypes{Read: true, Write: true, Unmap: true, WriteZeroes: true, Reset: true}
	ioSnapshot = ioTypes{Read: true, Reset: true}
	ioNVMe     = ioTypes{Read: true, Write: true, Unmap: true, WriteZeroes: true, Flush: true, Reset: true, Compare: true, CompareAndWrite: true, Abort: true, NvmeAdmin: true, NvmeIO: true}
	ioRaid     = ioTypes{Read: true, Write: true, Unmap: true, WriteZeroes: true, Flush: true, Reset: true}
)

// bdev is one registered block device.
type bdev struct {
	name       string
	uuid       string
	aliases    []string // as reported: the uuid for most types, "<lvs>/<lvol>" for lvols
	product    string
	blockSize  uint32
	numBlocks  uint64
	io         ioTypes
	memDomains int             // entries in memory_domains (malloc: 1; stacked bdevs inherit)
	dev        blockdev.Device // the data; nil reads fail
	driver     func() any      // driver_specific
	// driverJSON, when set, appends what driver() encodes to, without
	// building it (the node listings).
	driverJSON jsonAppender
	onClose    func()               // releases the device when the bdev goes away
	resize     func() (uint64, any) // optional: re-reads num_blocks (lvols)
	// Format details stacked modules check (raid refuses DIF, mixed
	// metadata; a superblock's data offset follows the I/O boundary).
	md                mdFormat // metadata and DIF (malloc)
	optimalIOBoundary uint32

	claim     string
	claimedBy string
	// claims counts claimBdev calls: an examine that read the bdev before
	// a claim (an lvstore created, then deleted) loads nothing it read.
	claims    uint64
	qos       [4]uint64
	histogram bool
	stats     ioStats
}

// mdFormat is a bdev's metadata layout as bdev_get_bdevs shows it.
type mdFormat struct {
	size       uint32
	interleave bool
	difType    int32
	difHead    bool
}

// ioStats are bdev_get_iostat's counters, updated by real I/O.
type ioStats struct {
	mu                      sync.Mutex
	bytesRead, readOps      uint64
	bytesWritten, writeOps  uint64
	readTicks, writeTicks   uint64
	maxRead, minRead        uint64
	maxWrite, minWrite      uint64
	failed                  uint64
	histogramReads, histAll uint64
}

func (b *bdev) close() {
	if b.onClose != nil {
		b.onClose()
		b.onClose = nil
	}
}

// device returns b's data path with iostat accounting.
func (b *bdev) device() blockdev.Device { return statDevice{b} }

// statDevice counts the I/O that goes through a bdev.
type statDevice struct{ b *bdev }

func (d statDevice) BlockSize() uint32 { return d.b.blockSize }
func (d statDevice) NumBlocks() uint64 {
	// The sizes that change at run time (bdev_lvol_resize, a namespace
	// that grew under bdev_nvme) are read from the device, safe without
	// the instance's lock: the data path reads them.
	switch dev := d.b.dev.(type) {
	case *blockdev.Lvol, *multipathDevice:
		return dev.NumBlocks()
	}
	return d.b.numBlocks
}

func (d statDevice) ReadAt(p []byte, off int64) (int, error) {
	start := time.Now()
	if d.b.dev == nil {
		d.b.stats.fail()
		return 0, fmt.Errorf("spdktest: bdev %s has no data path", d.b.name)
	}
	n, err := d.b.dev.ReadAt(p, off)
	d.b.stats.record(false, n, err, time.Since(start))
	return n, err
}

func (d statDevice) WriteAt(p []byte, off int64) (int, error) {
	start := time.Now()
	if d.b.dev == nil {
		d.b.stats.fail()
		return 0, fmt.Errorf("spdktest: bdev %s has no data path", d.b.name)
	}
	n, err := d.b.dev.WriteAt(p, off)
	d.b.stats.record(true, n, err, time.Since(start))
	return n, err
}

// WriteZeroes implements blockdev.Zeroer by passing the zeroing down, so
// that an lvstore created with clear_method unmap or write_zeroes releases
// a sparse device's memory instead of filling it with zeroed chunks.
func (d statDevice) WriteZeroes(off, length int64) error {
	if d.b.dev == nil {
		d.b.stats.fail()
		return fmt.Errorf("spdktest: bdev %s has no data path", d.b.name)
	}
	return blockdev.WriteZeroes(d.b.dev, off, length)
}

// Stripes implements blockdev.Striper for a raid0's bdev (0, 0 for the
// others).
func (d statDevice) Stripes() (int64, int) {
	if st, ok := d.b.dev.(blockdev.Striper); ok {
		return st.Stripes()
	}
	return 0, 0
}

var (
	_ blockdev.Zeroer  = statDevice{}
	_ blockdev.Striper = statDevice{}
)

func (s *ioStats) fail() {
	s.mu.Lock()
	s.failed++
	s.mu.Unlock()
}

func (s *ioStats) record(write bool, n int, err error, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failed++
		return
	}
	ticks := uint64(d.Nanoseconds()) * (tickRate / 1000000000)
	if write {
		s.bytesWritten += uint64(n)
		s.writeOps++
		s.writeTicks += ticks
		s.maxWrite = max(s.maxWrite, ticks)
		if s.minWrite == 0 || ticks < s.minWrite {
			s.minWrite = ticks
		}
	} else {
		s.bytesRead += uint64(n)
		s.readOps++
		s.readTicks += ticks
		s.maxRead = max(s.maxRead, ticks)
		if s.minRead == 0 || ticks < s.minRead {
			s.minRead = ticks
		}
	}
	s.histAll++
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b[:])
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// parseUUID parses the canonical form or 32 hex digits into 16 bytes.
func parseUUID(s string) ([]byte, bool) {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || (len(s) != 32 && len(s) != 36) {
		return nil, false
	}
	if len(s) == 36 && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
		return nil, false
	}
	out := make([]byte, 16)
	for i := 0; i < 16; i++ {
		hi, ok1 := hexVal(h[2*i])
		lo, ok2 := hexVal(h[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// lookup finds a bdev by name, alias or uuid, spelled exactly as SPDK
// reports them (spdk_bdev_get_by_name: an upper-case uuid or one without
// dashes finds nothing).
func (s *state) lookup(name string) *bdev {
	if name == "" {
		return nil
	}
	return s.byName[name]
}

// appeared wakes the waits for name (caller holds s.mu).
func (s *state) appeared(name string) {
	if ch, ok := s.waiting[name]; ok {
		close(ch)
		delete(s.waiting, name)
	}
}

// waitFor returns a channel closed when a bdev of that name, alias or uuid
// is registered (caller holds s.mu).
func (s *state) waitFor(name string) chan struct{} {
	ch, ok := s.waiting[name]
	if !ok {
		ch = make(chan struct{})
		s.waiting[name] = ch
	}
	return ch
}

// keys returns every name b is known by.
func (b *bdev) keys() []string {
	out := []string{b.name, b.uuid}
	return append(out, b.aliases...)
}

// registerBdev adds b to the one name/alias/uuid namespace (-17 on any
// clash), then runs what waits for it: pending passthrus, configuring raids,
// remembered bdev_examine names and auto examine.
func (s *state) registerBdev(b *bdev) *Error {
	for _, k := range b.keys() {
		if k != "" && s.lookup(k) != nil {
			return errExists
		}
	}
	s.bdevs = append(s.bdevs, b)
	for _, k := range b.keys() {
		if k != "" {
			s.byName[k] = b
		}
	}
	for _, k := range b.keys() {
		s.appeared(k)
	}
	s.bdevAppeared(b)
	return nil
}

// unregisterBdev hot-removes b: everything built on it goes too (lvstores
// and their lvols, namespaces, passthrus) and raids on it go offline.
func (s *state) unregisterBdev(b *bdev) {
	idx := -1
	for i, x := range s.bdevs {
		if x == b {
			idx = i
		}
	}
	if idx < 0 {
		return
	}
	s.bdevs = append(s.bdevs[:idx:idx], s.bdevs[idx+1:]...)
	for _, k := range b.keys() {
		if s.byName[k] == b {
			delete(s.byName, k)
		}
	}
	s.bdevRemoved(b)
	b.close()
}

// claimBdev marks b as used by claimer.
func claimBdev(b *bdev, typ, claimer string) {
	b.claim = typ
	b.claimedBy = claimer
	b.claims++
}

func releaseBdev(b *bdev) {
	b.claim = ""
	b.claimedBy = ""
}

// bdevAppeared runs the reactions to a newly registered bdev.
func (s *state) bdevAppeared(b *bdev) {
	s.passthruBaseAppeared(b)
	s.raidBaseAppeared(b)
	if s.autoExamine || s.examined[b.name] {
		s.examined[b.name] = true
		s.scheduleExamine(b)
	}
}

// bdevRemoved runs the reactions to a hot-removed bdev.
func (s *state) bdevRemoved(b *bdev) {
	s.lvstoreBaseRemoved(b)
	s.raidBaseRemoved(b)
	s.passthruBaseRemoved(b)
	s.namespaceBdevRemoved(b)
}
