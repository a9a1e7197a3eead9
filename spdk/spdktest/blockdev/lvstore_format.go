package blockdev

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"

	"github.com/vda-io/vda/internal/bufpool"
)

// On-disk layout of an lvstore. The metadata region is the first
// mdClusters clusters of the base device, cut into units of unitSize bytes
// (4 KiB, or the block size if larger). Every unit carries a header with
// the store's random instance id and the unit's own index, so a base that
// presents the units at other offsets (raid0 members in another order,
// another strip size) fails to load instead of loading garbage:
//
//	unit 0            superblock: geometry, generation, payload length and CRC
//	units 1..k        the JSON payload (lvols and their cluster maps)
//	units k+1..last-1 stamps written at creation (or stale payload units)
//	last unit         a copy of the superblock
//
// Stamps are written and checked on the first denseCheckedUnits units and
// on the units at the powers of two beyond, below maxCheckedUnits, so that
// loading reads a bounded part of the metadata region (SPDK itself reads
// only the pages it needs). That is where a raid0 assembled differently
// from when the store was written shows a unit from elsewhere first: the
// strip size changed (at the smaller strip, a power of two), a member is
// another device or members are in another order (at k strips: within the
// dense part, 256 KiB, for k·strip below it, else for k a power of two).
//
// A store made on a raid0 (a Striper) records its layout and stamps only
// the units where a base assembled otherwise shows first (layoutUnits):
// the start of every member's first strip and the powers of two. Loaded on
// the same layout it checks the members' units; on a base that does not
// say its layout, or says another, all of those units. The dense part was
// most of what a new array's lvstore wrote through the raid and the
// fabric (256 KiB), and showed nothing those units do not.
const (
	unitMagic         = "VDALVS01"
	unitHeaderLen     = 48
	denseCheckedUnits = 64 // a power of two
	maxCheckedUnits   = 4096

	kindSuper   = 1
	kindPayload = 2
	kindStamp   = 3
	kindTrailer = 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// unitHeader precedes the data in every metadata unit.
type unitHeader struct {
	id         [16]byte
	index      uint32
	kind       uint32
	generation uint64
	dataLen    uint32
}

// superblock is the data of units 0 and last.
type superblock struct {
	unitSize      uint32
	mdUnits       uint64
	payloadUnits  uint32
	payloadLen    uint64
	payloadCRC    uint32
	clusterSize   uint64
	totalClusters uint64
}

const superLen = 4 + 8 + 4 + 8 + 4 + 8 + 8

func (s superblock) encode() []byte {
	b := make([]byte, 0, superLen)
	b = binary.LittleEndian.AppendUint32(b, s.unitSize)
	b = binary.LittleEndian.AppendUint64(b, s.mdUnits)
	b = binary.LittleEndian.AppendUint32(b, s.payloadUnits)
	b = binary.LittleEndian.AppendUint64(b, s.payloadLen)
	b = binary.LittleEndian.AppendUint32(b, s.payloadCRC)
	b = binary.LittleEndian.AppendUint64(b, s.clusterSize)
	return binary.LittleEndian.AppendUint64(b, s.totalClusters)
}

func decodeSuper(b []byte) (superblock, bool) {
	if len(b) != superLen {
		return superblock{}, false
	}
	le := binary.LittleEndian
	return superblock{
		unitSize: le.Uint32(b[0:]), mdUnits: le.Uint64(b[4:]), payloadUnits: le.Uint32(b[12:]),
		payloadLen: le.Uint64(b[16:]), payloadCRC: le.Uint32(b[24:]), clusterSize: le.Uint64(b[28:]),
		totalClusters: le.Uint64(b[36:]),
	}, true
}

// putUnit writes one unit (header and data) into u, which is unitSize long.
func putUnit(u []byte, h unitHeader, data []byte) {
	clear(u)
	copy(u, unitMagic)
	copy(u[8:24], h.id[:])
	le := binary.LittleEndian
	le.PutUint32(u[24:], h.index)
	le.PutUint32(u[28:], h.kind)
	le.PutUint64(u[32:], h.generation)
	le.PutUint32(u[40:], uint32(len(data)))
	copy(u[unitHeaderLen:], data)
	crc := crc32.Update(crc32.Checksum(u[:44], crcTable), crcTable, data)
	le.PutUint32(u[44:], crc)
}

// parseUnit checks a unit's magic and CRC and returns its header and data.
func parseUnit(u []byte) (unitHeader, []byte, bool) {
	if len(u) < unitHeaderLen || !bytes.Equal(u[:8], []byte(unitMagic)) {
		return unitHeader{}, nil, false
	}
	le := binary.LittleEndian
	var h unitHeader
	copy(h.id[:], u[8:24])
	h.index = le.Uint32(u[24:])
	h.kind = le.Uint32(u[28:])
	h.generation = le.Uint64(u[32:])
	h.dataLen = le.Uint32(u[40:])
	if uint64(h.dataLen) > uint64(len(u)-unitHeaderLen) {
		return unitHeader{}, nil, false
	}
	data := u[unitHeaderLen : unitHeaderLen+int(h.dataLen)]
	crc := crc32.Update(crc32.Checksum(u[:44], crcTable), crcTable, data)
	if crc != le.Uint32(u[44:]) {
		return unitHeader{}, nil, false
	}
	return h, data, true
}

// payload is the JSON document describing the store and its lvols.
type payload struct {
	Name          string      `json:"name"`
	UUID          string      `json:"uuid"`
	ClusterSize   uint64      `json:"cluster_size"`
	ClearMethod   string      `json:"clear_method"`
	MDRatio       uint32      `json:"md_ratio"`
	MDClusters    uint64      `json:"md_clusters"`
	TotalClusters uint64      `json:"total_clusters"`
	BlockSize     uint32      `json:"block_size"`
	Lvols         []lvolEntry `json:"lvols"`
	// Layout is the striping of the base the store was created on, whose
	// member strips writeStamps stamped.
	Layout *stripeLayout `json:"layout,omitempty"`
}

type lvolEntry struct {
	Name        string   `json:"name"`
	UUID        string   `json:"uuid"`
	Thin        bool     `json:"thin"`
	Snapshot    bool     `json:"snapshot"`
	ReadOnly    bool     `json:"read_only,omitempty"`
	Parent      string   `json:"parent,omitempty"` // parent's uuid
	ClearMethod string   `json:"clear_method"`
	Clusters    []uint32 `json:"clusters"`               // 0: not allocated (cluster 0 is metadata); trailing zeros cut
	NumClusters uint64   `json:"num_clusters,omitempty"` // the lvol's size when Clusters was cut
}

// newInstanceID returns the random id stamped into every metadata unit.
func newInstanceID() ([16]byte, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("blockdev: instance id: %w", err)
	}
	return id, nil
}

// checkedUnits returns how many units from the start load reads and checks
// (at least the superblock and the payload's) and the single units it also
// checks beyond them, for a region of md units.
func checkedUnits(md uint64, payloadUnits uint32) (dense uint64, sparse []uint64) {
	dense = max(min(md, denseCheckedUnits), uint64(payloadUnits)+1)
	for i := uint64(denseCheckedUnits); i < min(md, maxCheckedUnits); i *= 2 {
		if i >= dense {
			sparse = append(sparse, i)
		}
	}
	return dense, sparse
}

// writeStamps fills the checked part of the metadata region with stamp
// units: on a striped base the units layoutUnits names, else the dense
// part and the powers of two beyond it. The superblock and its trailer
// copy are persistLocked's.
func (s *Lvstore) writeStamps() error {
	us := int64(s.unitSize)
	stamp := func(buf []byte, i uint64) {
		putUnit(buf, unitHeader{id: s.instanceID, index: uint32(i), kind: kindStamp}, nil)
	}
	var units []uint64
	if s.layout != nil {
		units, _ = layoutUnits(*s.layout, us, s.mdUnitsCount())
	}
	if units == nil {
		dense, sparse := checkedUnits(s.mdUnitsCount(), 0)
		pb := unitBufs.Get(int(int64(dense) * us))
		defer unitBufs.Put(pb)
		buf := *pb
		for i := range dense {
			stamp(buf[int64(i)*us:int64(i+1)*us], i)
		}
		if _, err := s.base.WriteAt(buf, 0); err != nil {
			return fmt.Errorf("blockdev: write lvstore metadata: %w", err)
		}
		units = sparse
	}
	pb := unitBufs.Get(int(us))
	defer unitBufs.Put(pb)
	for _, i := range units {
		stamp(*pb, i)
		if _, err := s.base.WriteAt(*pb, int64(i)*us); err != nil {
			return fmt.Errorf("blockdev: write lvstore metadata: %w", err)
		}
	}
	return nil
}

// unitBufs recycles the buffers of writeStamps (a few hundred KiB per
// lvstore made) and persistLocked (the whole payload, on every lvol made
// or changed): putUnit fills every unit whole, and the base has written
// them out or copied them when WriteAt returns.
var unitBufs bufpool.Pool

// persistLocked writes the current metadata as a new generation.
func (s *Lvstore) persistLocked() error {
	p := s.payloadLocked()
	data, ok := appendPayload(s.payloadBuf[:0], &p)
	if ok {
		s.payloadBuf = data // the next generation is about as long
	} else {
		var err error
		if data, err = json.Marshal(p); err != nil {
			return fmt.Errorf("blockdev: encode lvstore metadata: %w", err)
		}
	}
	per := int(s.unitSize) - unitHeaderLen
	units := (len(data) + per - 1) / per
	if uint64(units)+2 > s.mdUnitsCount() {
		return fmt.Errorf("%w: lvstore metadata of %d bytes exceeds its region", ErrNoSpace, len(data))
	}
	s.generation++
	us := int(s.unitSize)
	pb := unitBufs.Get((units + 2) * us)
	defer unitBufs.Put(pb)
	buf, trailer := (*pb)[:(units+1)*us], (*pb)[(units+1)*us:]
	for i := range units {
		chunk := data[i*per : min(len(data), (i+1)*per)]
		putUnit(buf[(i+1)*us:(i+2)*us], unitHeader{id: s.instanceID, index: uint32(i + 1), kind: kindPayload, generation: s.generation}, chunk)
	}
	sb := superblock{
		unitSize: s.unitSize, mdUnits: s.mdUnitsCount(), payloadUnits: uint32(units), payloadLen: uint64(len(data)),
		payloadCRC: crc32.Checksum(data, crcTable), clusterSize: s.clusterSize, totalClusters: s.totalClusters,
	}.encode()
	putUnit(buf[:us], unitHeader{id: s.instanceID, index: 0, kind: kindSuper, generation: s.generation}, sb)
	putUnit(trailer, unitHeader{id: s.instanceID, index: uint32(s.mdUnitsCount() - 1), kind: kindTrailer, generation: s.generation}, sb)
	if _, err := s.base.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("blockdev: write lvstore metadata: %w", err)
	}
	if _, err := s.base.WriteAt(trailer, int64(s.mdUnitsCount()-1)*int64(us)); err != nil {
		return fmt.Errorf("blockdev: write lvstore metadata trailer: %w", err)
	}
	return nil
}

// readMetadata reads and checks the metadata of base and returns the
// decoded payload, the instance id, the generation and the geometry.
//
// It reads the superblock and the payload units, the trailer, and then
// either one unit at the start of each member's first strip, when base is
// a raid0 (Striper) laid out as it was when the store was created, or else
// the whole checked part of the region (checkedUnits). With the layout
// unchanged, those units are where a member in another place or another
// device shows (a member's later strips follow its first); a layout that
// differs, or a base that does not say, gets the full check. SPDK v24.01's
// blobstore load reads a few pages as well (the super block, its used
// page, cluster and blob id masks, the metadata pages of the blobs:
// blobstore.c bs_load_*), not a region: the fake reads its own format, and
// finds an lvstore on exactly the bases it found one on before, with a
// few 4 KiB reads instead of 256 KiB, which on a controller node examining
// a thousand arrays was most of the examine's fabric I/O.
func readMetadata(base Device) (payload, unitHeader, superblock, error) {
	var p payload
	garbled := func(why string) (payload, unitHeader, superblock, error) {
		return p, unitHeader{}, superblock{}, fmt.Errorf("%w: %s", ErrNoLvstore, why)
	}
	bs := int64(base.BlockSize())
	size := SizeBytes(base)
	us := max(int64(4096), bs)
	if bs == 0 || us%bs != 0 || size < us {
		return garbled("base too small")
	}
	// The superblock and, in the same read, the first payload unit.
	head := make([]byte, min(2*us, size/us*us))
	if _, err := base.ReadAt(head, 0); err != nil {
		return p, unitHeader{}, superblock{}, fmt.Errorf("blockdev: read lvstore superblock: %w", err)
	}
	h, data, ok := parseUnit(head[:us])
	if !ok || h.kind != kindSuper || h.index != 0 {
		return garbled("no superblock")
	}
	sb, ok := decodeSuper(data)
	if !ok || int64(sb.unitSize) != us || sb.mdUnits < 2 || sb.mdUnits > uint64(size/us) ||
		uint64(sb.payloadUnits)+2 > sb.mdUnits || sb.payloadLen > uint64(sb.payloadUnits)*uint64(us-unitHeaderLen) {
		return garbled("bad superblock geometry")
	}
	pu := uint64(sb.payloadUnits)
	region := head
	if want := int64(pu+1) * us; want > int64(len(head)) {
		region = make([]byte, want)
		copy(region, head)
		if _, err := base.ReadAt(region[len(head):], int64(len(head))); err != nil {
			return p, unitHeader{}, superblock{}, fmt.Errorf("blockdev: read lvstore metadata: %w", err)
		}
	}
	tr := make([]byte, us)
	if _, err := base.ReadAt(tr, int64(sb.mdUnits-1)*us); err != nil {
		return p, unitHeader{}, superblock{}, fmt.Errorf("blockdev: read lvstore metadata trailer: %w", err)
	}
	th, tdata, ok := parseUnit(tr)
	if !ok || th.kind != kindTrailer || th.id != h.id || uint64(th.index) != sb.mdUnits-1 ||
		th.generation != h.generation || !bytes.Equal(tdata, data) {
		return garbled("trailer does not match superblock")
	}
	buf := make([]byte, 0, sb.payloadLen)
	for i := uint64(1); i <= pu; i++ {
		uh, udata, ok := parseUnit(region[int64(i)*us : int64(i+1)*us])
		if !ok || uh.id != h.id || uint64(uh.index) != i {
			return garbled(fmt.Sprintf("metadata unit %d is not where it was written", i))
		}
		if uh.kind != kindPayload || uh.generation != h.generation {
			return garbled(fmt.Sprintf("metadata unit %d is stale", i))
		}
		buf = append(buf, udata...)
	}
	if uint64(len(buf)) != sb.payloadLen || crc32.Checksum(buf, crcTable) != sb.payloadCRC {
		return garbled("payload checksum mismatch")
	}
	if err := json.Unmarshal(buf, &p); err != nil {
		return garbled("payload: " + err.Error())
	}
	var probes []uint64
	fast := false
	if cur := layoutOf(base); cur != nil && p.Layout != nil && *cur == *p.Layout {
		probes, fast = memberProbes(*cur, us, sb.mdUnits)
	}
	if !fast && p.Layout != nil {
		// Made on a raid0, found on a base that does not say or says
		// otherwise: every unit its stamps went to.
		probes, fast = layoutUnits(*p.Layout, us, sb.mdUnits)
	}
	if !fast {
		dense, sparse := checkedUnits(sb.mdUnits, sb.payloadUnits)
		if dense > pu+1 {
			rest := make([]byte, int64(dense-pu-1)*us)
			if _, err := base.ReadAt(rest, int64(pu+1)*us); err != nil {
				return p, unitHeader{}, superblock{}, fmt.Errorf("blockdev: read lvstore metadata: %w", err)
			}
			for i := pu + 1; i < dense; i++ {
				o := int64(i-pu-1) * us
				if uh, _, ok := parseUnit(rest[o : o+us]); !ok || uh.id != h.id || uint64(uh.index) != i {
					return garbled(fmt.Sprintf("metadata unit %d is not where it was written", i))
				}
			}
		}
		probes = sparse
	}
	one := tr // checked: reused
	for _, i := range probes {
		if i <= pu {
			continue // a payload unit, checked above
		}
		if _, err := base.ReadAt(one, int64(i)*us); err != nil {
			return p, unitHeader{}, superblock{}, fmt.Errorf("blockdev: read lvstore metadata: %w", err)
		}
		if uh, _, ok := parseUnit(one); !ok || uh.id != h.id || uint64(uh.index) != i {
			return garbled(fmt.Sprintf("metadata unit %d is not where it was written", i))
		}
	}
	return p, h, sb, nil
}

// Striper is a device that stripes its members (raid0): strip bytes on each
// member in turn. An lvstore records the layout of the base it was created
// on and, on the same layout, checks one unit per member when it loads.
type Striper interface {
	Stripes() (strip int64, members int)
}

// stripeLayout is a Striper's layout, as the payload records it.
type stripeLayout struct {
	Strip   int64 `json:"strip"`
	Members int   `json:"members"`
}

// layoutOf returns base's layout, nil when it does not stripe.
func layoutOf(base Device) *stripeLayout {
	st, ok := base.(Striper)
	if !ok {
		return nil
	}
	strip, n := st.Stripes()
	if strip <= 0 || n <= 0 {
		return nil
	}
	return &stripeLayout{Strip: strip, Members: n}
}

// layoutUnits returns the units a store made on a base striped as l
// stamps, in order: the first unit of every member's first strip
// (memberProbes) and the units at the powers of two (where another strip
// size shows first), before the trailer and below maxCheckedUnits. False
// when memberProbes is, or when l (read from a payload) cannot be a layout
// of a region of md units.
func layoutUnits(l stripeLayout, us int64, md uint64) ([]uint64, bool) {
	if l.Strip <= 0 || l.Members <= 0 || md < 2 || uint64(l.Members) >= md || l.Strip/us >= int64(md) {
		return nil, false
	}
	units, ok := memberProbes(l, us, md)
	if !ok {
		return nil, false
	}
	for i := uint64(1); i < min(md-1, maxCheckedUnits); i *= 2 {
		if !slices.Contains(units, i) {
			units = append(units, i)
		}
	}
	slices.Sort(units)
	return units, true
}

// memberProbes returns the units at the start of the first strip of every
// member but the first (whose first unit is the superblock); false when one
// is not a whole unit inside the region before the trailer.
func memberProbes(l stripeLayout, us int64, mdUnits uint64) ([]uint64, bool) {
	probes := make([]uint64, 0, max(l.Members-1, 0))
	for k := int64(1); k < int64(l.Members); k++ {
		off := k * l.Strip
		if off%us != 0 || uint64(off/us) >= mdUnits-1 {
			return nil, false
		}
		probes = append(probes, uint64(off/us))
	}
	return probes, true
}

// appendPayload appends p as json.Marshal encodes it, without reflection:
// every lvol made or changed rewrites the whole payload, which on a disk
// node of hundreds of VDs made encoding/json the most of that work. It
// reports false, leaving the encoding to json.Marshal, when a string needs
// escaping.
func appendPayload(b []byte, p *payload) ([]byte, bool) {
	ok := true
	str := func(key, v string) {
		b = append(b, key...)
		ok = ok && plainJSON(v)
		b = append(append(append(b, '"'), v...), '"')
	}
	num := func(key string, v uint64) { b = strconv.AppendUint(append(b, key...), v, 10) }
	flag := func(key string, v bool) { b = strconv.AppendBool(append(b, key...), v) }
	str(`{"name":`, p.Name)
	str(`,"uuid":`, p.UUID)
	num(`,"cluster_size":`, p.ClusterSize)
	str(`,"clear_method":`, p.ClearMethod)
	num(`,"md_ratio":`, uint64(p.MDRatio))
	num(`,"md_clusters":`, p.MDClusters)
	num(`,"total_clusters":`, p.TotalClusters)
	num(`,"block_size":`, uint64(p.BlockSize))
	b = append(b, `,"lvols":`...)
	if p.Lvols == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range p.Lvols {
			e := &p.Lvols[i]
			if i > 0 {
				b = append(b, ',')
			}
			str(`{"name":`, e.Name)
			str(`,"uuid":`, e.UUID)
			flag(`,"thin":`, e.Thin)
			flag(`,"snapshot":`, e.Snapshot)
			if e.ReadOnly {
				flag(`,"read_only":`, true)
			}
			if e.Parent != "" {
				str(`,"parent":`, e.Parent)
			}
			str(`,"clear_method":`, e.ClearMethod)
			b = append(b, `,"clusters":`...)
			if e.Clusters == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '[')
				for j, c := range e.Clusters {
					if j > 0 {
						b = append(b, ',')
					}
					b = strconv.AppendUint(b, uint64(c), 10)
				}
				b = append(b, ']')
			}
			if e.NumClusters != 0 {
				num(`,"num_clusters":`, e.NumClusters)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if p.Layout != nil {
		b = strconv.AppendInt(append(b, `,"layout":{"strip":`...), p.Layout.Strip, 10)
		b = strconv.AppendInt(append(b, `,"members":`...), int64(p.Layout.Members), 10)
		b = append(b, '}')
	}
	return append(b, '}'), ok
}

// plainJSON reports whether json.Marshal writes s between quotes as it is:
// printable ASCII without a quote, a backslash or what it escapes for
// HTML (<, >, &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
