package nvmeof

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// MaxRaidEpoch is the largest fencing epoch a raid UUID can carry (48 bits).
const MaxRaidEpoch = 1<<48 - 1

// RaidUUID is the UUID a primary gives the raid of DA daID at fencing epoch
// epoch (at most MaxRaidEpoch): 80 bits derived from the DA ID, then the
// epoch. The raid has no superblock, so the UUID lives only in the running
// SPDK; reading it back (RaidEpoch) tells which epoch the loaded stack was
// built at. A stack built at an older epoch may hold stale lvstore metadata
// in memory (another primary wrote the disks since), so a primary rebuilds
// it from the disks instead of reusing it. The version nibble is 8 (RFC
// 9562 custom UUID).
func RaidUUID(daID string, epoch int64) string {
	h := sha256.Sum256([]byte("vda raid uuid\x00" + daID))
	var u [16]byte
	copy(u[:10], h[:10])
	u[6] = 0x80 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(epoch))
	copy(u[10:], e[2:])
	return formatUUID(u)
}

// RaidEpoch decodes RaidUUID; ok is false for a UUID that RaidUUID did not
// make for daID.
func RaidEpoch(daID, uuid string) (int64, bool) {
	raw, err := hex.DecodeString(strings.ReplaceAll(uuid, "-", ""))
	if err != nil || len(raw) != 16 {
		return 0, false
	}
	var e [8]byte
	copy(e[2:], raw[10:])
	epoch := int64(binary.BigEndian.Uint64(e[:]))
	if !strings.EqualFold(RaidUUID(daID, epoch), uuid) {
		return 0, false
	}
	return epoch, true
}

// formatUUID renders u in the canonical lower-case 8-4-4-4-12 form.
func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
