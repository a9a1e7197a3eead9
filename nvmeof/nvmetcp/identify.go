package nvmetcp

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// ControllerInfo is what a controller reported about itself at connect.
type ControllerInfo struct {
	Addr     string // host:port connected to
	SubNQN   string
	CntlID   uint16 // controller ID the target assigned
	VendorID uint16
	Serial   string
	Model    string
	Firmware string
	Version  string // NVMe version, e.g. "1.3"
	// MaxTransferBytes is the largest transfer of one command (MDTS); 0:
	// no limit. Larger ReadAt/WriteAt calls are split.
	MaxTransferBytes uint32
	// InCapsuleBytes is the largest write sent inside the command capsule
	// on the I/O queue (IOCCSZ); larger writes wait for R2T.
	InCapsuleBytes uint32
	// MaxH2CDataBytes is the target's MAXH2CDATA on the I/O queue.
	MaxH2CDataBytes uint32
	QueueDepth      int    // I/O commands in flight at most
	Namespaces      uint32 // NN: the largest namespace ID
	ANAReporting    bool   // CMIC bit 3
	ANACap          uint8  // ANA capabilities (ANACAP)
	ANAGroups       uint32 // NANAGRPID: number of ANA groups
	ANATransition   uint8  // ANATT: seconds a transition may last
	KeepAliveUnit   uint16 // KAS: keep-alive granularity in 100 ms units (0: not supported)
}

// identifyController parses an Identify Controller data structure.
func identifyController(b []byte, ci *ControllerInfo) (mdts uint8, icdoff uint16) {
	ci.VendorID = binary.LittleEndian.Uint16(b[0:])
	ci.Serial = asciiField(b[4:24])
	ci.Model = asciiField(b[24:64])
	ci.Firmware = asciiField(b[64:72])
	ci.CntlID = binary.LittleEndian.Uint16(b[78:])
	ci.ANAReporting = b[76]&(1<<3) != 0
	ci.KeepAliveUnit = binary.LittleEndian.Uint16(b[320:])
	ci.ANATransition = b[343]
	ci.ANACap = b[344]
	ci.ANAGroups = binary.LittleEndian.Uint32(b[349:])
	ci.Namespaces = binary.LittleEndian.Uint32(b[516:])
	ioccsz := binary.LittleEndian.Uint32(b[1792:])
	if ioccsz >= 4 {
		ci.InCapsuleBytes = (ioccsz - 4) * 16 // the capsule is 16-byte units, the SQE 64 bytes of it
	}
	return b[77], binary.LittleEndian.Uint16(b[1800:])
}

func asciiField(b []byte) string {
	return strings.TrimRight(strings.TrimRight(string(b), "\x00"), " ")
}

// UUID is a namespace UUID (RFC 4122 byte order).
type UUID [16]byte

// String returns the canonical 8-4-4-4-12 form, or "" for the zero UUID.
func (u UUID) String() string {
	if u == (UUID{}) {
		return ""
	}
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NamespaceInfo describes one active namespace.
type NamespaceInfo struct {
	NSID       uint32
	BlockSize  uint32 // bytes per logical block
	Blocks     uint64 // NSZE: size in logical blocks
	UUID       UUID   // from the Namespace Identification Descriptor list; zero if none
	NGUID      [16]byte
	EUI64      [8]byte
	ANAGroupID uint32
}

// SizeBytes is the namespace's size in bytes.
func (n NamespaceInfo) SizeBytes() uint64 { return n.Blocks * uint64(n.BlockSize) }

// identifyNamespace parses an Identify Namespace data structure; ok is
// false for an inactive namespace (NSZE 0).
func identifyNamespace(b []byte, nsid uint32) (NamespaceInfo, error) {
	ni := NamespaceInfo{NSID: nsid, Blocks: binary.LittleEndian.Uint64(b[0:])}
	if ni.Blocks == 0 {
		return ni, fmt.Errorf("%w: namespace %d is not active", ErrNoNamespace, nsid)
	}
	nlbaf := int(b[25]) + 1
	flbas := b[26]
	idx := int(flbas&0x0f) | int(flbas>>5&0x03)<<4
	if idx >= nlbaf || idx >= 64 {
		return ni, protocolErr("namespace %d: LBA format %d of %d", nsid, idx, nlbaf)
	}
	lbaf := b[128+4*idx:]
	if ms := binary.LittleEndian.Uint16(lbaf); ms != 0 {
		return ni, fmt.Errorf("%w: namespace %d has %d bytes of metadata per block, which this host does not handle",
			ErrNoNamespace, nsid, ms)
	}
	lbads := lbaf[2]
	if lbads < 9 || lbads > 24 {
		return ni, protocolErr("namespace %d: block size 2^%d", nsid, lbads)
	}
	ni.BlockSize = 1 << lbads
	ni.ANAGroupID = binary.LittleEndian.Uint32(b[92:])
	copy(ni.NGUID[:], b[104:120])
	copy(ni.EUI64[:], b[120:128])
	return ni, nil
}

// namespaceDescriptors fills the UUID (and NGUID, EUI-64 if present) from a
// Namespace Identification Descriptor list.
func namespaceDescriptors(b []byte, ni *NamespaceInfo) {
	for len(b) >= 4 {
		typ, n := b[0], int(b[1])
		if typ == 0 || n == 0 || 4+n > len(b) {
			return
		}
		v := b[4 : 4+n]
		switch {
		case typ == 1 && n == 8:
			copy(ni.EUI64[:], v)
		case typ == 2 && n == 16:
			copy(ni.NGUID[:], v)
		case typ == 3 && n == 16:
			copy(ni.UUID[:], v)
		}
		b = b[4+n:]
	}
}

// activeNamespaces parses an active namespace ID list (ascending, zero
// terminated).
func activeNamespaces(b []byte) []uint32 {
	var ids []uint32
	for i := 0; i+4 <= len(b); i += 4 {
		id := binary.LittleEndian.Uint32(b[i:])
		if id == 0 || (len(ids) > 0 && id <= ids[len(ids)-1]) {
			break
		}
		ids = append(ids, id)
	}
	return ids
}

// ANAState is the Asymmetric Namespace Access state of a namespace through
// one controller (NVMe base specification 8.20). The zero value means not
// known (not reported yet).
type ANAState uint8

// ANA states, with the values of the ANA log page.
const (
	ANAOptimized      ANAState = 0x1
	ANANonOptimized   ANAState = 0x2
	ANAInaccessible   ANAState = 0x3
	ANAPersistentLoss ANAState = 0x4
	ANAChange         ANAState = 0xf
)

// String returns the state as SPDK and Linux spell it.
func (s ANAState) String() string {
	switch s {
	case 0:
		return "unknown"
	case ANAOptimized:
		return "optimized"
	case ANANonOptimized:
		return "non_optimized"
	case ANAInaccessible:
		return "inaccessible"
	case ANAPersistentLoss:
		return "persistent_loss"
	case ANAChange:
		return "change"
	}
	return fmt.Sprintf("reserved(%#x)", uint8(s))
}

// Usable reports whether I/O may be sent in this state (optimized or
// non-optimized).
func (s ANAState) Usable() bool { return s == ANAOptimized || s == ANANonOptimized }

// anaLog is a parsed ANA log page: the state of every group and of every
// namespace listed.
type anaLog struct {
	groups map[uint32]ANAState
	ns     map[uint32]ANAState
}

// anaLogSize is the size of the ANA log page with every namespace listed.
func anaLogSize(groups, nn uint32) uint32 {
	n := uint64(16) + uint64(groups)*32 + uint64(nn)*4
	return uint32(min(n, 1<<20))
}

func parseANALog(b []byte) (anaLog, error) {
	l := anaLog{groups: map[uint32]ANAState{}, ns: map[uint32]ANAState{}}
	if len(b) < 16 {
		return l, protocolErr("ANA log page of %d bytes", len(b))
	}
	ngrps := binary.LittleEndian.Uint16(b[8:])
	off := 16
	for g := 0; g < int(ngrps); g++ {
		if off+32 > len(b) {
			return l, protocolErr("ANA log page: group %d of %d beyond %d bytes", g, ngrps, len(b))
		}
		d := b[off:]
		grp := binary.LittleEndian.Uint32(d[0:])
		nnsid := binary.LittleEndian.Uint32(d[4:])
		state := ANAState(d[16] & 0x0f)
		l.groups[grp] = state
		off += 32
		if uint64(nnsid)*4 > uint64(len(b)-off) {
			return l, protocolErr("ANA log page: group %d lists %d namespaces beyond %d bytes", grp, nnsid, len(b))
		}
		for i := 0; i < int(nnsid); i++ {
			l.ns[binary.LittleEndian.Uint32(b[off:])] = state
			off += 4
		}
	}
	return l, nil
}
