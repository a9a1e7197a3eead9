package nvmeof

import (
	"crypto/sha1" //nolint:gosec // RFC 9562 name-based UUIDs (version 5) are defined with SHA-1.
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Subsystem identity that must be the same on every controller exporting one
// subsystem NQN, so that a host sees one subsystem with several paths.
const (
	// ModelNumber is the model number of every VDA subsystem (at most 40
	// ASCII characters in SPDK).
	ModelNumber = "VDA_CONTROLLER"
	// MaxSerialNumberLen is SPDK's limit for serial_number.
	MaxSerialNumberLen = 20
)

// Controller-ID ranges: SPDK subsystems hand out controller IDs from
// min_cntlid to max_cntlid, by default 1..65519 (0xffef). Controllers that
// export the same NQN must use disjoint ranges or Linux refuses the second
// path.
const (
	MinCntlID          = 1
	MaxCntlID          = 65519
	CntlIDRangeSize    = 1000
	MaxControllerIndex = (MaxCntlID-MinCntlID+1)/CntlIDRangeSize - 1 // 64
)

const namespaceUUIDVersion = 5

// uuidNamespace is the RFC 9562 namespace of VDA's name-based UUIDs: a
// fixed random value. Changing it would change every namespace UUID.
var uuidNamespace = [16]byte{
	0x5c, 0x1a, 0x8e, 0x43, 0x07, 0x2d, 0x4b, 0x6e,
	0x9f, 0x31, 0xd4, 0x2a, 0x6b, 0x80, 0xc5, 0x17,
}

// SerialNumber is the serial number of subsystem n: the first 20 hex digits
// of SHA-256(n). It is printable ASCII, fits SPDK's 20-character limit, and
// is the same on every controller exporting n.
func SerialNumber(n NQN) string {
	sum := sha256.Sum256([]byte(n))
	return hex.EncodeToString(sum[:MaxSerialNumberLen/2])
}

// NamespaceUUID is the UUID of the namespace of subsystem n: the RFC 9562
// version-5 (SHA-1, name-based) UUID of n in VDA's namespace, in the
// canonical lower-case 8-4-4-4-12 form. Every controller exporting n gives
// its namespace this UUID, so hosts see one namespace over several paths.
func NamespaceUUID(n NQN) string {
	h := sha1.New() //nolint:gosec // see the import.
	h.Write(uuidNamespace[:])
	h.Write([]byte(n))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | namespaceUUIDVersion<<4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return formatUUID(u)
}

// ControllerIDRange returns the min_cntlid/max_cntlid range of the
// controller with the given index among a DA's controllers: index 0 gets
// 1-1000, index 1 gets 1001-2000 (as in the recording), and so on up to
// MaxControllerIndex (64001-65000). Other indexes fail with
// ErrControllerIndex.
func ControllerIDRange(index int) (minID, maxID uint16, err error) {
	if index < 0 || index > MaxControllerIndex {
		return 0, 0, fmt.Errorf("%w: %d is not in 0..%d", ErrControllerIndex, index, MaxControllerIndex)
	}
	lo := MinCntlID + index*CntlIDRangeSize
	return uint16(lo), uint16(lo + CntlIDRangeSize - 1), nil
}
