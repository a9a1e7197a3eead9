package spdktest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"math"
	"os"
	"time"
)

func init() {
	registerUnlocked("bdev_get_bdevs", phaseRuntime, bdevGetBdevs)
	register("bdev_malloc_create", phaseRuntime, bdevMallocCreate)
	register("bdev_malloc_delete", phaseRuntime, deleteOfKind("malloc"))
	register("bdev_aio_create", phaseRuntime, bdevAIOCreate)
	register("bdev_aio_delete", phaseRuntime, deleteOfKind("aio"))
	register("bdev_aio_rescan", phaseRuntime, bdevAIORescan)
	register("bdev_null_create", phaseRuntime, bdevNullCreate)
	register("bdev_null_delete", phaseRuntime, deleteOfKind("null"))
	register("bdev_set_qos_limit", phaseRuntime, bdevSetQoS)
	register("bdev_get_iostat", phaseRuntime, bdevGetIostat)
	register("bdev_enable_histogram", phaseRuntime, bdevEnableHistogram)
	register("bdev_get_histogram", phaseRuntime, bdevGetHistogram)
}

type rateLimits struct {
	RWIOs  uint64 `json:"rw_ios_per_sec"`
	RWMB   uint64 `json:"rw_mbytes_per_sec"`
	ReadMB uint64 `json:"r_mbytes_per_sec"`
	WritMB uint64 `json:"w_mbytes_per_sec"`
}

type memoryDomain struct {
	ID   string `json:"dma_device_id"`
	Type int    `json:"dma_device_type"`
}

var acceleratorDomain = memoryDomain{ID: "SPDK_ACCEL_DMA_DEVICE", Type: 2}

// bdevJSON is one element of bdev_get_bdevs in SPDK's key order.
type bdevJSON struct {
	Name           string         `json:"name"`
	Aliases        []string       `json:"aliases"`
	ProductName    string         `json:"product_name"`
	BlockSize      uint32         `json:"block_size"`
	NumBlocks      uint64         `json:"num_blocks"`
	UUID           string         `json:"uuid"`
	MDSize         *uint32        `json:"md_size,omitempty"`
	MDInterleave   *bool          `json:"md_interleave,omitempty"`
	DIFType        *int32         `json:"dif_type,omitempty"`
	DIFIsHeadOfMD  *bool          `json:"dif_is_head_of_md,omitempty"`
	DIFChecks      *difChecks     `json:"enabled_dif_check_types,omitempty"`
	Limits         rateLimits     `json:"assigned_rate_limits"`
	Claimed        bool           `json:"claimed"`
	ClaimType      string         `json:"claim_type,omitempty"`
	Zoned          bool           `json:"zoned"`
	IOTypes        ioTypes        `json:"supported_io_types"`
	MemoryDomains  []memoryDomain `json:"memory_domains,omitempty"`
	DriverSpecific any            `json:"driver_specific"`
}

// difChecks is enabled_dif_check_types.
type difChecks struct {
	Reftag bool `json:"reftag"`
	Apptag bool `json:"apptag"`
	Guard  bool `json:"guard"`
}

func (b *bdev) json() bdevJSON {
	j := b.jsonBase()
	if b.driver != nil {
		j.DriverSpecific = b.driver()
	}
	return j
}

// jsonBase is json without the driver_specific part (an empty object).
func (b *bdev) jsonBase() bdevJSON {
	j := bdevJSON{
		Name: b.name, Aliases: b.aliases, ProductName: b.product, BlockSize: b.blockSize,
		NumBlocks: b.numBlocks, UUID: b.uuid,
		Limits:  rateLimits{RWIOs: b.qos[0], RWMB: b.qos[1], ReadMB: b.qos[2], WritMB: b.qos[3]},
		Claimed: b.claim != "", ClaimType: b.claim, IOTypes: b.io, DriverSpecific: struct{}{},
	}
	if j.Aliases == nil {
		j.Aliases = []string{}
	}
	if b.md.size != 0 {
		md := b.md
		j.MDSize, j.MDInterleave, j.DIFType = &md.size, &md.interleave, &md.difType
		if md.difType != 0 {
			j.DIFIsHeadOfMD = &md.difHead
			j.DIFChecks = &difChecks{Reftag: md.difType != 3, Guard: true}
		}
	}
	for i := 0; i < b.memDomains; i++ {
		j.MemoryDomains = append(j.MemoryDomains, acceleratorDomain)
	}
	return j
}

// listJSON is json with the driver_specific part appended in place
// where the bdev can (driverJSON), as the listings do.
func (b *bdev) listJSON() bdevJSON {
	if b.driverJSON == nil {
		return b.json()
	}
	j := b.jsonBase()
	j.DriverSpecific = b.driverJSON
	return j
}

// bdevGetBdevs lists bdevs; with a name and a timeout it waits for the bdev
// to appear (asynchronously, without holding the state lock).
func bdevGetBdevs(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name    *string `json:"name"`
		Timeout uint64  `json:"timeout"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	if p.Name == nil {
		return s.listBdevs()
	}
	out, changed := s.getBdevs(p.Name)
	switch {
	case out != nil:
		return out, nil
	case p.Timeout == 0:
		return nil, errNoDevice
	}
	tm := time.NewTimer(time.Duration(p.Timeout) * time.Millisecond)
	return async(func() (any, *Error) {
		defer tm.Stop()
		for {
			select {
			case <-changed:
			case <-tm.C:
				return nil, rpcErr(-110, "Connection timed out")
			case <-s.in.done:
				return nil, rpcErr(-110, "Connection timed out")
			}
			if out, changed = s.getBdevs(p.Name); out != nil {
				return out, nil
			}
		}
	}), nil
}

// listBdevs answers bdev_get_bdevs without a name: every bdev, encoded
// under the state's lock straight into the result instead of copied out
// as a []bdevJSON first (each sync of every node lists them all).
func (s *state) listBdevs() (any, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := newRawResult(max(s.bdevListLen, 1024*len(s.bdevs)))
	r.b = append(r.b, '[')
	for i, b := range s.bdevs {
		if i > 0 {
			r.b = append(r.b, ',')
		}
		j := b.listJSON()
		var err error
		if r.b, err = j.appendJSON(r.b); err != nil {
			return nil, rpcErr(codeInternalError, err.Error())
		}
	}
	s.bdevListLen = len(r.b) + len(r.b)/8 // the next listing is about as long
	r.b = append(r.b, ']')
	return r, nil
}

// getBdevs lists every bdev (name empty) or the one named; when there is
// none of that name it returns nil and a channel closed when one registers
// under that name (or an lvol is renamed to it).
func (s *state) getBdevs(name *string) ([]bdevJSON, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == nil {
		out := make([]bdevJSON, 0, len(s.bdevs))
		for _, b := range s.bdevs {
			out = append(out, b.json())
		}
		return out, nil
	}
	if b := s.lookup(*name); b != nil {
		return []bdevJSON{b.json()}, nil
	}
	return nil, s.waitFor(*name)
}

// bdevMallocCreate is create_malloc_disk, then spdk_bdev_register: bad
// geometry is -22; separate metadata (md_size without md_interleave) is
// refused by the bdev layer for a bdev that supports accel sequences; an
// empty name is -22 (no name at all gets MallocN).
func bdevMallocCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name              *string `json:"name"`
		UUID              *string `json:"uuid"`
		BlockSize         uint32  `json:"block_size"`
		NumBlocks         uint64  `json:"num_blocks"`
		OptimalIOBoundary uint32  `json:"optimal_io_boundary"`
		MDSize            uint32  `json:"md_size"`
		MDInterleave      bool    `json:"md_interleave"`
		DIFType           int32   `json:"dif_type"`
		DIFIsHeadOfMD     bool    `json:"dif_is_head_of_md"`
		PhysicalBlockSize uint32  `json:"physical_block_size"`
	}
	if err := decodeParams(params, &p, "block_size", "num_blocks"); err != nil {
		return nil, err
	}
	var uuid string
	if p.UUID != nil {
		u, ok := parseUUID(*p.UUID)
		if !ok || len(*p.UUID) != 36 {
			return nil, errDecode // spdk_json_decode_uuid: the dashed form only
		}
		uuid = formatUUID(u)
	}
	if p.NumBlocks == 0 || p.BlockSize%512 != 0 || p.PhysicalBlockSize%512 != 0 {
		return nil, errInval
	}
	switch p.MDSize {
	case 0, 8, 16, 32, 64, 128:
	default:
		return nil, errInval
	}
	if p.DIFType < 0 || p.DIFType > 3 || (p.DIFType != 0 && p.MDSize == 0) {
		return nil, errInval
	}
	blockSize := p.BlockSize
	if p.MDInterleave {
		blockSize += p.MDSize
	}
	name := ""
	if p.Name != nil {
		name = *p.Name
	} else {
		name = fmt.Sprintf("Malloc%d", s.mallocSeq)
		s.mallocSeq++
	}
	if blockSize == 0 {
		return nil, rpcErr(-12, "Cannot allocate memory") // spdk_zmalloc(0)
	}
	// Separate metadata needs a bdev without accel sequences: malloc has
	// them unless DIF is on.
	if name == "" || (p.MDSize != 0 && !p.MDInterleave && p.DIFType == 0) {
		return nil, errInval
	}
	if uuid == "" || uuid == "00000000-0000-0000-0000-000000000000" {
		uuid = newUUID()
	}
	b := &bdev{
		name: name, uuid: uuid, aliases: []string{uuid}, product: "Malloc disk",
		blockSize: blockSize, numBlocks: p.NumBlocks, io: ioMalloc, memDomains: 1,
		dev:               blockdev.NewMemory(blockSize, p.NumBlocks),
		md:                mdFormat{size: p.MDSize, interleave: p.MDInterleave, difType: p.DIFType, difHead: p.DIFIsHeadOfMD},
		optimalIOBoundary: p.OptimalIOBoundary,
	}
	if p.DIFType != 0 {
		b.memDomains = 0 // no accel sequences, no memory domains
	}
	b.driver = func() any { return struct{}{} }
	if err := s.registerBdev(b); err != nil {
		return nil, err
	}
	return b.name, nil
}

// bdevUUID validates a requested uuid or makes a random one.
func bdevUUID(want string) (string, *Error) {
	if want == "" {
		return newUUID(), nil
	}
	u, ok := parseUUID(want)
	if !ok {
		return "", errInval
	}
	return formatUUID(u), nil
}

type aioJSON struct {
	Filename          string `json:"filename"`
	BlockSizeOverride bool   `json:"block_size_override"`
	Readonly          bool   `json:"readonly"`
}

// bdevAIOCreate is create_aio_bdev: the file opens first (errno), then
// the block size is checked (none given: SPDK cannot detect one on a
// regular file), then the bdev registers (-17 taken name, -22 empty one).
func bdevAIOCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name      string `json:"name"`
		Filename  string `json:"filename"`
		BlockSize uint32 `json:"block_size"`
		Readonly  bool   `json:"readonly"`
	}
	if err := decodeParams(params, &p, "name", "filename"); err != nil {
		return nil, err
	}
	st, err := os.Stat(p.Filename)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNoEnt
		}
		return nil, errInval
	}
	bs := p.BlockSize
	if bs < 512 || bs&(bs-1) != 0 || st.Size()%int64(bs) != 0 {
		return nil, errInval
	}
	if p.Name == "" {
		return nil, errInval
	}
	if s.lookup(p.Name) != nil {
		return nil, errExists
	}
	f, err := blockdev.OpenFile(p.Filename, bs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNoEnt
		}
		return nil, errInval
	}
	uuid := newUUID()
	b := &bdev{
		name: p.Name, uuid: uuid, aliases: []string{uuid}, product: productAIO,
		blockSize: bs, numBlocks: f.NumBlocks(), io: ioAIO, dev: f,
		onClose: func() { _ = f.Close() },
	}
	ds := obj{{"aio", aioJSON{Filename: p.Filename, BlockSizeOverride: true, Readonly: p.Readonly}}}
	b.driver = func() any { return ds }
	if err := s.registerBdev(b); err != nil {
		b.close()
		return nil, err
	}
	return b.name, nil
}

const productAIO = "AIO disk"

// bdevAIORescan re-reads the size of an aio bdev's file.
func bdevAIORescan(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	b := s.lookup(p.Name)
	if b == nil || b.product != productAIO {
		return nil, errNoDevice
	}
	f, ok := b.dev.(*blockdev.File)
	if !ok {
		return nil, errNoDevice
	}
	size, err := f.Size()
	if err != nil {
		return nil, errInval
	}
	n := uint64(size) / uint64(b.blockSize)
	if n != b.numBlocks {
		if n < b.numBlocks {
			// spdk_bdev_notify_blockcnt_change refuses to shrink an open
			// bdev, and bdev_aio_rescan holds a descriptor itself.
			return nil, rpcErr(-16, "Device or resource busy")
		}
		f.SetNumBlocks(n)
		b.numBlocks = n
	}
	return true, nil
}

func bdevNullCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name          string `json:"name"`
		UUID          string `json:"uuid"`
		BlockSize     uint32 `json:"block_size"`
		NumBlocks     uint64 `json:"num_blocks"`
		MDSize        uint32 `json:"md_size"`
		DIFType       int    `json:"dif_type"`
		DIFIsHeadOfMD bool   `json:"dif_is_head_of_md"`
	}
	if err := decodeParams(params, &p, "name", "block_size", "num_blocks"); err != nil {
		return nil, err
	}
	if p.BlockSize == 0 || p.BlockSize%512 != 0 || p.NumBlocks == 0 {
		return nil, errInval
	}
	uuid, rerr := bdevUUID(p.UUID)
	if rerr != nil {
		return nil, rerr
	}
	b := &bdev{
		name: p.Name, uuid: uuid, aliases: []string{uuid}, product: "Null disk",
		blockSize: p.BlockSize, numBlocks: p.NumBlocks, io: ioNull,
		dev: nullDevice{bs: p.BlockSize, n: p.NumBlocks},
	}
	b.driver = func() any { return struct{}{} }
	if err := s.registerBdev(b); err != nil {
		return nil, err
	}
	return b.name, nil
}

// nullDevice discards writes and reads zeros, like bdev_null.
type nullDevice struct {
	bs uint32
	n  uint64
}

func (d nullDevice) BlockSize() uint32 { return d.bs }
func (d nullDevice) NumBlocks() uint64 { return d.n }
func (d nullDevice) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}
func (d nullDevice) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// deleteOfKind is bdev_{malloc,aio,null}_delete: -19 unless name is a bdev
// of that product.
func deleteOfKind(kind string) handlerFunc {
	product := map[string]string{"malloc": "Malloc disk", "aio": "AIO disk", "null": "Null disk"}[kind]
	return func(s *state, params json.RawMessage) (any, *Error) {
		var p struct {
			Name string `json:"name"`
		}
		if err := decodeParams(params, &p, "name"); err != nil {
			return nil, err
		}
		b := s.lookup(p.Name)
		if b == nil || b.product != product {
			return nil, errNoDevice
		}
		s.unregisterBdev(b)
		return true, nil
	}
}

func bdevSetQoS(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name   string  `json:"name"`
		RWIOs  *uint64 `json:"rw_ios_per_sec"`
		RWMB   *uint64 `json:"rw_mbytes_per_sec"`
		ReadMB *uint64 `json:"r_mbytes_per_sec"`
		WritMB *uint64 `json:"w_mbytes_per_sec"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	b := s.lookup(p.Name)
	if b == nil {
		return nil, errNoDevice
	}
	// SPDK takes UINT64_MAX for "not given".
	vals := []*uint64{p.RWIOs, p.RWMB, p.ReadMB, p.WritMB}
	given := false
	for i, v := range vals {
		if v != nil && *v == math.MaxUint64 {
			vals[i] = nil
		}
		given = given || vals[i] != nil
	}
	if !given {
		return nil, rpcErr(-22, "No rate limits specified")
	}
	for i, v := range vals {
		if v == nil {
			continue
		}
		x := *v
		if i == 0 && x%1000 != 0 {
			x = (x/1000 + 1) * 1000 // SPDK rounds IOPS up to a multiple of 1000
		}
		if i > 0 {
			x = min(x, math.MaxUint64/1024/1024) // kept in bytes per second
		}
		b.qos[i] = x
	}
	return true, nil
}

type iostatBdev struct {
	Name            string `json:"name,omitempty"`
	BytesRead       uint64 `json:"bytes_read"`
	NumReadOps      uint64 `json:"num_read_ops"`
	BytesWritten    uint64 `json:"bytes_written"`
	NumWriteOps     uint64 `json:"num_write_ops"`
	BytesUnmapped   uint64 `json:"bytes_unmapped"`
	NumUnmapOps     uint64 `json:"num_unmap_ops"`
	BytesCopied     uint64 `json:"bytes_copied"`
	NumCopyOps      uint64 `json:"num_copy_ops"`
	ReadLatency     uint64 `json:"read_latency_ticks"`
	MaxReadLatency  uint64 `json:"max_read_latency_ticks"`
	MinReadLatency  uint64 `json:"min_read_latency_ticks"`
	WriteLatency    uint64 `json:"write_latency_ticks"`
	MaxWriteLatency uint64 `json:"max_write_latency_ticks"`
	MinWriteLatency uint64 `json:"min_write_latency_ticks"`
	UnmapLatency    uint64 `json:"unmap_latency_ticks"`
	MaxUnmapLatency uint64 `json:"max_unmap_latency_ticks"`
	MinUnmapLatency uint64 `json:"min_unmap_latency_ticks"`
	CopyLatency     uint64 `json:"copy_latency_ticks"`
	MaxCopyLatency  uint64 `json:"max_copy_latency_ticks"`
	MinCopyLatency  uint64 `json:"min_copy_latency_ticks"`
	IOError         *obj   `json:"io_error,omitempty"`
	DriverSpecific  *obj   `json:"driver_specific,omitempty"`
}

// iostatChannel is one element of bdev_get_iostat's per_channel list.
type iostatChannel struct {
	ThreadID int `json:"thread_id"`
	iostatBdev
}

type iostatResult struct {
	TickRate uint64       `json:"tick_rate"`
	Ticks    uint64       `json:"ticks"`
	Bdevs    []iostatBdev `json:"bdevs"`
}

var startTime = time.Now()

func ticksNow() uint64 { return uint64(time.Since(startTime).Nanoseconds()) * (tickRate / 1000000000) }

func (b *bdev) iostat() iostatBdev {
	st := &b.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	j := iostatBdev{
		Name: b.name, BytesRead: st.bytesRead, NumReadOps: st.readOps, BytesWritten: st.bytesWritten,
		NumWriteOps: st.writeOps, ReadLatency: st.readTicks, MaxReadLatency: st.maxRead,
		MinReadLatency: st.minRead, WriteLatency: st.writeTicks, MaxWriteLatency: st.maxWrite,
		MinWriteLatency: st.minWrite, IOError: &obj{},
	}
	if st.failed > 0 {
		j.IOError = &obj{{"failed", st.failed}}
	}
	if b.product == "NVMe disk" {
		j.DriverSpecific = &obj{}
	}
	return j
}

func bdevGetIostat(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name       *string `json:"name"`
		PerChannel bool    `json:"per_channel"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	res := iostatResult{TickRate: tickRate, Ticks: ticksNow(), Bdevs: []iostatBdev{}}
	if p.Name == nil && p.PerChannel {
		return nil, errInval
	}
	if p.Name != nil {
		b := s.lookup(*p.Name)
		if b == nil {
			return nil, errNoDevice
		}
		st := b.iostat()
		if p.PerChannel {
			// One channel, on the app thread; the per-bdev keys without
			// name and io_error.
			st.Name, st.IOError, st.DriverSpecific = "", nil, nil
			return obj{{"tick_rate", uint64(tickRate)}, {"ticks", res.Ticks}, {"name", b.name},
				{"channels", []iostatChannel{{ThreadID: 1, iostatBdev: st}}}}, nil
		}
		res.Bdevs = append(res.Bdevs, st)
		return res, nil
	}
	for _, b := range s.bdevs {
		res.Bdevs = append(res.Bdevs, b.iostat())
	}
	return res, nil
}

func bdevEnableHistogram(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name   string `json:"name"`
		Enable bool   `json:"enable"`
	}
	if err := decodeParams(params, &p, "name", "enable"); err != nil {
		return nil, err
	}
	b := s.lookup(p.Name)
	if b == nil {
		return nil, errNoDevice
	}
	b.histogram = p.Enable
	return true, nil
}

type histogramResult struct {
	Histogram   string `json:"histogram"`
	BucketShift uint32 `json:"bucket_shift"`
	TSCRate     uint64 `json:"tsc_rate"`
}

// histogramBytes is the size of SPDK's serialized histogram with bucket
// shift 7 (the recorded payload decodes to this many bytes).
const histogramBytes = 59392

func bdevGetHistogram(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	b := s.lookup(p.Name)
	if b == nil {
		return nil, errNoDevice
	}
	if !b.histogram && b.claim != "" {
		// SPDK gathers the histogram from the bdev's I/O channels: one
		// without a histogram fails with EFAULT. A bdev nobody opened has
		// no channel, and an empty histogram.
		return nil, rpcErr(codeInternalError, "Bad address")
	}
	return histogramResult{
		Histogram:   base64.StdEncoding.EncodeToString(make([]byte, histogramBytes)),
		TSCRate:     tickRate,
		BucketShift: 7,
	}, nil
}
