package csi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Volume and snapshot IDs. A volume is a DA's volume or a clone inside a
// DA; a snapshot is a snapshot of a DA's volume:
//
//	csi-<32 hex>                 a DA volume: the DA's name (VolumeName)
//	csi-<32 hex>.csi-<32 hex>    a clone volume: DA name "." clone name
//	csi-<32 hex>.snap-<32 hex>   a snapshot: DA name "." snapshot name
//
// The 32 hex digits after the DA's "csi-" hash the CSI name of the volume
// the DA was created for; after the clone's "csi-" the CSI name of the
// clone volume, after "snap-" the CSI name of the snapshot. A volume
// cloned from a volume has a hidden snapshot "clone-<its 32 hex>" in the
// source's DA. Every name is a valid DA, clone or snapshot name, and the
// DA volume IDs of the driver's first version are still valid.
const (
	snapPrefix   = "snap-"
	hiddenPrefix = "clone-"
	idSep        = "."
	hexLen       = 32
)

// nameHash is the 32 hex digits naming the object made for CSI name name.
func nameHash(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:hexLen/2])
}

// isHashName reports whether s is prefix and 32 lowercase hex digits.
func isHashName(s, prefix string) bool {
	h, ok := strings.CutPrefix(s, prefix)
	if !ok || len(h) != hexLen {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// volRef is a volume: DA da's volume, or clone clone of DA da.
type volRef struct {
	da, clone string
}

func (v volRef) id() string {
	if v.clone == "" {
		return v.da
	}
	return v.da + idSep + v.clone
}

// exp is the name of the volume's exporter: the clone's name for a clone,
// the DA's for the DA's volume (distinct within the DA).
func (v volRef) exp() string {
	if v.clone != "" {
		return v.clone
	}
	return v.da
}

// hiddenSnap is the snapshot a clone volume cloned from a volume was made
// from (it exists only for such volumes).
func (v volRef) hiddenSnap() string {
	return hiddenPrefix + strings.TrimPrefix(v.clone, daPrefix)
}

// parseVolumeID reads a volume ID; ok is false for an ID this driver
// cannot have made.
func parseVolumeID(id string) (volRef, bool) {
	da, clone, split := strings.Cut(id, idSep)
	if !isHashName(da, daPrefix) || split && !isHashName(clone, daPrefix) {
		return volRef{}, false
	}
	return volRef{da: da, clone: clone}, true
}

// SplitVolumeID returns the DA and, for a volume made from a snapshot or
// another volume, the clone a volume ID names; ok is false for an ID this
// driver cannot have made.
func SplitVolumeID(id string) (da, clone string, ok bool) {
	v, ok := parseVolumeID(id)
	return v.da, v.clone, ok
}

// checkVolumeID refuses an ID this driver cannot have made, as NotFound.
func checkVolumeID(id string) error {
	if id == "" {
		return status.Error(codes.InvalidArgument, "volume ID missing")
	}
	if _, ok := parseVolumeID(id); !ok {
		return status.Errorf(codes.NotFound, "volume %q does not exist (not a VDA CSI volume ID)", id)
	}
	return nil
}

// lockVolume checks a request's volume ID and takes the volume's lock;
// the caller runs unlock when done.
func (d *Driver) lockVolume(ctx context.Context, id string) (v volRef, unlock func(), err error) {
	if err := checkVolumeID(id); err != nil {
		return volRef{}, nil, err
	}
	v, _ = parseVolumeID(id)
	unlock, err = d.locks.lock(ctx, id)
	if err != nil {
		return volRef{}, nil, err
	}
	return v, unlock, nil
}

// snapRef is snapshot snap of DA da.
type snapRef struct {
	da, snap string
}

func (s snapRef) id() string { return s.da + idSep + s.snap }

// parseSnapshotID reads a snapshot ID; ok is false for an ID this driver
// cannot have made.
func parseSnapshotID(id string) (snapRef, bool) {
	da, snap, _ := strings.Cut(id, idSep)
	if !isHashName(da, daPrefix) || !isHashName(snap, snapPrefix) {
		return snapRef{}, false
	}
	return snapRef{da: da, snap: snap}, true
}
