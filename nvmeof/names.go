package nvmeof

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Prefixes that mark an object as created by VDA. Agents delete only objects
// whose names carry them (and which the desired state no longer wants).
const (
	// NamePrefix starts every bdev, NVMe controller, lvstore and lvol
	// name VDA creates.
	NamePrefix = "vda-"
	// NQNPrefix starts every subsystem and host NQN VDA creates. Its
	// domain part is the one the tutorial's exporter NQNs use.
	NQNPrefix = "nqn.2016-06.io.spdk:vda-"
	// IDLen is the length of a stable ID: 128 random bits in lower-case hex.
	IDLen = 32
	// MaxLvolNameLen and MaxLvstoreNameLen are SPDK's limits (70 characters
	// gave -22 on v24.01).
	MaxLvolNameLen    = 63
	MaxLvstoreNameLen = 63
)

// NewID returns a fresh random stable ID: 32 lower-case hex digits.
func NewID() string {
	var b [IDLen / 2]byte
	// crypto/rand.Read never returns an error (it aborts the program if
	// the system's random source fails).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidateID reports whether id is a stable ID: exactly 32 lower-case hex
// digits. The name functions expect valid IDs: validate IDs from outside
// (desired state, API requests) before naming anything after them.
func ValidateID(id string) error {
	if validID(id) {
		return nil
	}
	if len(id) != IDLen {
		return fmt.Errorf("%w %s: want %d hex digits, got %d bytes", ErrInvalidID, quote(id), IDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isDigit(c) && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w %s: character %q is not a lower-case hex digit", ErrInvalidID, quote(id), c)
		}
	}
	return nil
}

// validID reports whether ValidateID accepts id, without building its
// error.
func validID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Kind identifies which name function produced an owned name.
type Kind int

// The kinds of objects VDA names. DN: disk node, CN: controller node.
const (
	KindPDBdev         Kind = iota + 1 // DN: malloc or aio bdev of a PD
	KindPDController                   // DN: NVMe (PCIe) controller of a PD; its bdev is "<name>n1"
	KindPDLvstore                      // DN: lvstore on a PD
	KindVDLvol                         // DN: lvol of a VD, in its PD's lvstore
	KindVDNQN                          // DN: subsystem exporting a VD
	KindHostNQN                        // CN: host NQN of a controller
	KindVDController                   // CN primary: NVMe controller attached to a VD; bdev "<name>n1"
	KindRaid                           // CN primary: raid0 over a DA's VDs
	KindDALvstore                      // CN primary: lvstore on the raid
	KindDALvol                         // CN primary: the DA's volume lvol
	KindExpController                  // CN secondary: NVMe controller attached to the primary's export
	KindExpNQN                         // CN: exporter subsystem, named from user names (see ExpNQN)
	KindPrimaryHostNQN                 // CN primary: host NQN a primary attaches its VDs with, per epoch
	KindSnapLvol                       // CN primary: a snapshot of the DA lvol, in the DA lvstore
	KindCloneLvol                      // CN primary: a clone of a snapshot, in the DA lvstore
)

// space is a namespace in which SPDK requires names to be unique.
type space int

const (
	spaceBdev space = iota + 1
	spaceController
	spaceLvstore
	spaceLvol
	spaceNQN
)

type kindInfo struct {
	name  string
	tag   string // the word after the prefix; never contains '-'
	space space
}

// kinds maps each Kind to its tag. Every name is prefix + tag + "-" + id, and
// no tag contains '-', so the tag (and hence the Kind) is the text between
// the prefix and the first '-' after it: names of different kinds never
// collide, whatever the IDs.
var kinds = map[Kind]kindInfo{
	KindPDBdev:         {"PD bdev", "pd", spaceBdev},
	KindPDController:   {"PD NVMe controller", "pdnvme", spaceController},
	KindPDLvstore:      {"PD lvstore", "pdlvs", spaceLvstore},
	KindVDLvol:         {"VD lvol", "vd", spaceLvol},
	KindVDNQN:          {"VD subsystem NQN", "vd", spaceNQN},
	KindHostNQN:        {"controller host NQN", "cntlr", spaceNQN},
	KindVDController:   {"VD NVMe controller", "vdnvme", spaceController},
	KindRaid:           {"DA raid bdev", "raid", spaceBdev},
	KindDALvstore:      {"DA lvstore", "dalvs", spaceLvstore},
	KindDALvol:         {"DA lvol", "da", spaceLvol},
	KindExpController:  {"exporter NVMe controller", "expnvme", spaceController},
	KindExpNQN:         {"exporter NQN", expTag, spaceNQN},
	KindPrimaryHostNQN: {"primary host NQN", "primary", spaceNQN},
	KindSnapLvol:       {"snapshot lvol", "snap", spaceLvol},
	KindCloneLvol:      {"clone lvol", "clone", spaceLvol},
}

// String names the kind for messages.
func (k Kind) String() string {
	if info, ok := kinds[k]; ok {
		return info.name
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

func name(k Kind, id string) string { return NamePrefix + kinds[k].tag + "-" + id }
func nqn(k Kind, id string) NQN     { return NQN(NQNPrefix + kinds[k].tag + "-" + id) }

// PDBdevName is the name of the malloc or aio bdev backing PD pdID.
func PDBdevName(pdID string) string { return name(KindPDBdev, pdID) }

// PDControllerName is the NVMe controller name for an NVMe (PCIe) PD; its
// bdev is NVMeBdevName(PDControllerName(pdID), 1).
func PDControllerName(pdID string) string { return name(KindPDController, pdID) }

// PDLvstoreName is the name of the lvstore on PD pdID.
func PDLvstoreName(pdID string) string { return name(KindPDLvstore, pdID) }

// VDLvolName is the name of VD vdID's lvol inside its PD's lvstore. The
// lvol's bdev name is its UUID; LvolAlias(PDLvstoreName(pd), VDLvolName(vd))
// is its alias.
func VDLvolName(vdID string) string { return name(KindVDLvol, vdID) }

// VDNQN is the NQN of the subsystem a disk node exports VD vdID under.
func VDNQN(vdID string) NQN { return nqn(KindVDNQN, vdID) }

// HostNQN is the host NQN of controller cntlrID: a secondary attaches the
// primary's export with it (a primary attaches its VDs with PrimaryHostNQN,
// which also names the epoch). The API
// must refuse user-supplied initiator NQNs for which IsOwnedNQN is true, or
// a host could pose as a controller.
func HostNQN(cntlrID string) NQN { return nqn(KindHostNQN, cntlrID) }

// PrimaryHostNQN is the host NQN with which controller cntlrID, primary of
// its DA at epoch, attaches the DA's VDs; a disk node admits exactly this
// host to each VD of the DA. Because the epoch is part of it, the fence is
// permanent: a deposed primary's NVMe controllers to the VDs (which SPDK
// keeps reconnecting: they never give up, see agent) are never admitted
// again, not even when the same controller becomes primary once more at a
// later epoch. Its lvstore, loaded from metadata that the newer primaries
// have since changed, can therefore never write to the VDs again.
func PrimaryHostNQN(cntlrID string, epoch uint64) NQN {
	return nqn(KindPrimaryHostNQN, cntlrID+epochSep+strconv.FormatUint(epoch, 10))
}

// epochSep separates the ID and the epoch of a KindPrimaryHostNQN.
const epochSep = "-e"

// VDControllerName is the name of the NVMe controller a primary attaches VD
// vdID under; VDBdevName is the bdev it yields.
func VDControllerName(vdID string) string { return name(KindVDController, vdID) }

// VDBdevName is the bdev of the attached VD: "<VDControllerName>n1".
func VDBdevName(vdID string) string { return NVMeBdevName(VDControllerName(vdID), 1) }

// RaidName is the name of DA daID's raid0 bdev.
func RaidName(daID string) string { return name(KindRaid, daID) }

// DALvstoreName is the name of the lvstore on DA daID's raid.
func DALvstoreName(daID string) string { return name(KindDALvstore, daID) }

// DALvolName is the name of DA daID's volume lvol in DALvstoreName(daID).
func DALvolName(daID string) string { return name(KindDALvol, daID) }

// SnapLvolName is the name of snapshot snapID's lvol in its DA's lvstore
// (DALvstoreName): bdev_lvol_snapshot of the DA lvol names it so, and the
// primary finds it again by this name after a restart or a failover.
func SnapLvolName(snapID string) string { return name(KindSnapLvol, snapID) }

// CloneLvolName is the name of clone cloneID's lvol in its DA's lvstore.
func CloneLvolName(cloneID string) string { return name(KindCloneLvol, cloneID) }

// ExpControllerName is the name of the NVMe controller a secondary attaches
// the primary's export of exporter expID under; ExpBdevName is its bdev.
func ExpControllerName(expID string) string { return name(KindExpController, expID) }

// ExpBdevName is the bdev of the attached export: "<ExpControllerName>n1".
func ExpBdevName(expID string) string { return NVMeBdevName(ExpControllerName(expID), 1) }

// NVMeBdevName is the name SPDK gives namespace nsid of an NVMe controller
// attached as ctrlr: "<ctrlr>n<nsid>".
func NVMeBdevName(ctrlr string, nsid uint32) string {
	return ctrlr + "n" + strconv.FormatUint(uint64(nsid), 10)
}

// LvolAlias is the alias SPDK registers for an lvol: "<lvstore>/<lvol>".
func LvolAlias(lvstore, lvol string) string { return lvstore + "/" + lvol }

// Name is an owned name taken apart by ParseName.
type Name struct {
	Kind Kind
	// ID is the stable ID the name derives from (PD, VD, controller, DA or
	// exporter ID); empty for KindExpNQN.
	ID string
	// NSID is n for an NVMe bdev name "<controller>n<n>" and 0 for the
	// controller name itself and for every other kind.
	NSID uint32
	// DAName and ExpName are the user names of a KindExpNQN.
	DAName, ExpName string
	// Epoch is the epoch of a KindPrimaryHostNQN (0 for every other kind).
	Epoch uint64
}

// ParseName recognises any name or NQN produced by this package's name
// functions and returns what it was made from; ok is false for anything
// else. It inverts every name function (the tests check it), which proves
// that no two inputs share a name.
func ParseName(s string) (n Name, ok bool) {
	if rest, isNQN := strings.CutPrefix(s, NQNPrefix); isNQN {
		if strings.HasPrefix(rest, expTag+"-") {
			da, exp, err := DecodeExpNQN(NQN(s))
			return Name{Kind: KindExpNQN, DAName: da, ExpName: exp}, err == nil
		}
		return parseTagged(rest, spaceNQN)
	}
	if rest, isName := strings.CutPrefix(s, NamePrefix); isName {
		return parseTagged(rest, 0)
	}
	return Name{}, false
}

// parseTagged parses "<tag>-<id>[n<nsid>]" for the kinds in sp (or, when sp
// is 0, every kind that is not an NQN).
func parseTagged(rest string, sp space) (Name, bool) {
	tag, id, found := strings.Cut(rest, "-")
	if !found {
		return Name{}, false
	}
	for k, info := range kinds {
		if info.tag != tag || (sp == spaceNQN) != (info.space == spaceNQN) || k == KindExpNQN {
			continue
		}
		n := Name{Kind: k, ID: id}
		if k == KindPrimaryHostNQN {
			if len(id) <= IDLen {
				return Name{}, false
			}
			e, ok := parseEpoch(id[IDLen:])
			if !ok {
				return Name{}, false
			}
			n.ID, n.Epoch = id[:IDLen], e
		}
		if info.space == spaceController && len(id) > IDLen {
			nsid, ok := parseNSID(id[IDLen:])
			if !ok {
				return Name{}, false
			}
			n.ID, n.NSID = id[:IDLen], nsid
		}
		// Not ValidateID: most names an agent parses and refuses (an lvol's
		// alias "<lvstore>/<lvol>", on every listed lvol of every sync)
		// would build its error only to drop it.
		return n, validID(n.ID)
	}
	return Name{}, false
}

// parseNSID parses "n<nsid>" with a canonical decimal nsid 1..2^32-1.
func parseNSID(s string) (uint32, bool) {
	d, ok := strings.CutPrefix(s, "n")
	if !ok || !allDigits(d) || d[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(d, 10, 32)
	return uint32(v), err == nil
}

// parseEpoch parses "-e<epoch>" with a canonical decimal epoch.
func parseEpoch(s string) (uint64, bool) {
	d, ok := strings.CutPrefix(s, epochSep)
	if !ok || !allDigits(d) || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	v, err := strconv.ParseUint(d, 10, 64)
	return v, err == nil
}

// String renders n back into the name ParseName took apart; it returns ""
// for a Name that no name function can produce.
func (n Name) String() string {
	info, ok := kinds[n.Kind]
	switch {
	case !ok:
		return ""
	case n.Kind == KindPrimaryHostNQN:
		return string(PrimaryHostNQN(n.ID, n.Epoch))
	case n.Kind == KindExpNQN:
		exp, err := ExpNQN(n.DAName, n.ExpName)
		if err != nil {
			return ""
		}
		return string(exp)
	case info.space == spaceNQN:
		return string(nqn(n.Kind, n.ID))
	case n.NSID != 0 && info.space == spaceController:
		return NVMeBdevName(name(n.Kind, n.ID), n.NSID)
	}
	return name(n.Kind, n.ID)
}

// spaceOf returns the namespace a parsed name lives in.
func (n Name) spaceOf() space {
	sp := kinds[n.Kind].space
	if sp == spaceController && n.NSID != 0 {
		return spaceBdev
	}
	return sp
}

func isOwnedIn(s string, sp space) bool {
	n, ok := ParseName(s)
	return ok && n.spaceOf() == sp
}

// IsOwnedBdev reports whether name is a bdev name or lvol alias VDA created:
// a PD bdev, a raid, an attached NVMe namespace of a VDA controller, or the
// alias of a VD lvol in a PD lvstore or of a DA, snapshot or clone lvol in
// a DA lvstore.
func IsOwnedBdev(name string) bool {
	if lvs, lvol, ok := strings.Cut(name, "/"); ok {
		s, ok1 := ParseName(lvs)
		l, ok2 := ParseName(lvol)
		return ok1 && ok2 && (s.Kind == KindPDLvstore && l.Kind == KindVDLvol ||
			s.Kind == KindDALvstore && (l.Kind == KindDALvol || l.Kind == KindSnapLvol || l.Kind == KindCloneLvol))
	}
	return isOwnedIn(name, spaceBdev)
}

// IsOwnedController reports whether name is an NVMe controller name VDA
// attached (bdev_nvme_attach_controller's name).
func IsOwnedController(name string) bool { return isOwnedIn(name, spaceController) }

// IsOwnedLvstore reports whether name is an lvstore name VDA created.
func IsOwnedLvstore(name string) bool { return isOwnedIn(name, spaceLvstore) }

// IsOwnedLvol reports whether name is an lvol name (without the lvstore
// part) VDA created.
func IsOwnedLvol(name string) bool { return isOwnedIn(name, spaceLvol) }

// IsOwnedNQN reports whether n is a subsystem or host NQN VDA created.
func IsOwnedNQN(n NQN) bool { return isOwnedIn(string(n), spaceNQN) }
