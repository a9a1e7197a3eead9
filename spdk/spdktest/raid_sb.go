package spdktest

// The raid superblock in SPDK v24.01's on-disk format (bdev_raid.h,
// bdev_raid_sb.c), written at block 0 of every member, so that it lives as
// long as the member's data does: a member re-created over the same data
// (a passthru, an AIO file) re-assembles its raid on examine, and a new
// raid refuses it.

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

const (
	sbSig        = "SPDKRAID"
	sbHeaderLen  = 256
	sbBaseLen    = 64
	sbConfigured = 1
	sbFailed     = 2
)

// raidSB is struct raid_bdev_superblock.
type raidSB struct {
	uuid      string
	name      string
	raidSize  uint64
	blockSize uint32
	level     string
	stripSize uint32 // blocks
	seq       uint64
	numBase   uint8
	bases     []raidSBBase
}

// raidSBBase is struct raid_bdev_sb_base_bdev.
type raidSBBase struct {
	uuid       string
	dataOffset uint64
	dataSize   uint64
	state      uint32
	slot       uint8
}

var sbLevels = map[string]uint32{"raid0": 0, "raid1": 1, "raid5f": 95, "concat": 99}

// initSB is raid_bdev_init_superblock.
func (r *raid) initSB(stripBlocks uint64) {
	sb := &raidSB{uuid: r.uuidOrZero(), name: r.name, raidSize: r.numBlocks, blockSize: r.blocklen, level: r.level,
		stripSize: uint32(stripBlocks), numBase: uint8(len(r.members))}
	for i, m := range r.members {
		u := m.uuid
		if u == "" {
			u = zeroUUID
		}
		sb.bases = append(sb.bases, raidSBBase{uuid: u, dataOffset: m.dataOffset, dataSize: m.dataSize,
			state: sbConfigured, slot: uint8(i)})
	}
	r.sb = sb
}

// raidWriteSB is raid_bdev_write_superblock: the sequence number goes up
// and every open member gets the superblock.
func (s *state) raidWriteSB(r *raid) {
	r.sb.seq++
	data := r.sb.encode()
	for _, m := range r.members {
		if m.b == nil || m.b.dev == nil {
			continue
		}
		bs := int(m.b.blockSize)
		buf := make([]byte, (len(data)+bs-1)/bs*bs)
		copy(buf, data)
		_, _ = m.b.device().WriteAt(buf, 0)
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is spdk_crc32c_update(buf, len, 0): no inversion in or out.
func crc32c(b []byte) uint32 { return ^crc32.Update(0xffffffff, castagnoli, b) }

func (sb *raidSB) encode() []byte {
	n := sbHeaderLen + sbBaseLen*len(sb.bases)
	b := make([]byte, n)
	le := binary.LittleEndian
	copy(b[0:8], sbSig)
	le.PutUint16(b[8:], 1)  // version major
	le.PutUint16(b[10:], 0) // version minor
	le.PutUint32(b[12:], uint32(n))
	u, _ := parseUUID(sb.uuid)
	copy(b[24:40], u)
	copy(b[40:40+raidNameSize-1], sb.name)
	le.PutUint64(b[104:], sb.raidSize)
	le.PutUint32(b[112:], sb.blockSize)
	le.PutUint32(b[116:], sbLevels[sb.level])
	le.PutUint32(b[120:], sb.stripSize)
	le.PutUint64(b[128:], sb.seq)
	b[136] = sb.numBase
	b[255] = uint8(len(sb.bases))
	for i, x := range sb.bases {
		e := b[sbHeaderLen+i*sbBaseLen:]
		u, _ := parseUUID(x.uuid)
		copy(e[0:16], u)
		le.PutUint64(e[16:], x.dataOffset)
		le.PutUint64(e[24:], x.dataSize)
		le.PutUint32(e[32:], x.state)
		e[40] = x.slot
	}
	le.PutUint32(b[16:], crc32c(b))
	return b
}

// readRaidSB reads and checks the superblock at block 0 of b
// (raid_bdev_load_base_bdev_superblock).
func readRaidSB(b *bdev) (*raidSB, bool) {
	if b.dev == nil || b.numBlocks == 0 {
		return nil, false
	}
	bs := int(b.blockSize)
	if bs == 0 || uint64((sbHeaderLen+bs-1)/bs) > b.numBlocks {
		return nil, false
	}
	// Reads are whole blocks, as SPDK's.
	read := func(n int) []byte {
		buf := make([]byte, (n+bs-1)/bs*bs)
		if k, err := b.device().ReadAt(buf, 0); err != nil || k != len(buf) {
			return nil
		}
		return buf[:n]
	}
	head := read(sbHeaderLen)
	if head == nil {
		return nil, false
	}
	if !bytes.Equal(head[:8], []byte(sbSig)) {
		return nil, false
	}
	le := binary.LittleEndian
	n := int(le.Uint32(head[12:]))
	if n < sbHeaderLen || n > sbHeaderLen+sbBaseLen*raidMaxBaseBdevs {
		return nil, false
	}
	if uint64((n+bs-1)/bs) > b.numBlocks {
		return nil, false
	}
	full := read(n)
	if full == nil {
		return nil, false
	}
	crc := le.Uint32(full[16:])
	le.PutUint32(full[16:], 0)
	if crc32c(full) != crc || le.Uint16(full[8:]) != 1 {
		return nil, false
	}
	sb := &raidSB{uuid: formatUUID(full[24:40]), name: string(bytes.TrimRight(full[40:40+raidNameSize], "\x00")),
		raidSize: le.Uint64(full[104:]), blockSize: le.Uint32(full[112:]), stripSize: le.Uint32(full[120:]),
		seq: le.Uint64(full[128:]), numBase: full[136]}
	for k, v := range sbLevels {
		if v == le.Uint32(full[116:]) {
			sb.level = k
		}
	}
	count := int(full[255])
	if sbHeaderLen+sbBaseLen*count > n {
		return nil, false
	}
	for i := 0; i < count; i++ {
		e := full[sbHeaderLen+i*sbBaseLen:]
		sb.bases = append(sb.bases, raidSBBase{uuid: formatUUID(e[0:16]), dataOffset: le.Uint64(e[16:]),
			dataSize: le.Uint64(e[24:]), state: le.Uint32(e[32:]), slot: e[40]})
	}
	return sb, true
}
