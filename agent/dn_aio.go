package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vda-io/vda/nvmeof"
)

// errAioRefused marks an aio PD whose file the agent will not use: outside
// Config.AioDirs, not a regular file or block device, or holding data that
// is not the PD's own without force.
var errAioRefused = errors.New("agent: aio device refused")

// LvstoreLabelReader reads the label of a device: the name of the lvstore
// whose metadata starts at r (size bytes long), if r holds one in a format
// the reader knows. SPDK's blobstore is always known (SPDKLvstoreLabel);
// Config.LvstoreLabels adds others (the fake SPDK's, in dev mode).
type LvstoreLabelReader func(r io.ReaderAt, size int64) (name string, ok bool)

// aioProbeBytes is how much of a device is read for the data check: a
// device whose first MiB is all zeros holds nothing an lvstore could
// destroy that anyone could find again (no partition table, file system
// or volume label starts later).
const aioProbeBytes = 1 << 20

// aioPolicy decides which files aio PDs may use (Config.AioDirs and
// LvstoreLabels). The zero policy refuses every aio PD.
type aioPolicy struct {
	dirs   []string
	labels []LvstoreLabelReader
}

func newAioPolicy(cfg Config) aioPolicy {
	return aioPolicy{dirs: cfg.AioDirs, labels: append([]LvstoreLabelReader{SPDKLvstoreLabel}, cfg.LvstoreLabels...)}
}

// resolve returns the file an aio PD's filename names, symlinks resolved,
// if it is a regular file or a block device inside an allowed directory
// (or is an allowed device itself).
func (p aioPolicy) resolve(file string) (string, os.FileInfo, error) {
	if len(p.dirs) == 0 {
		return "", nil, fmt.Errorf("%w: aio PDs are not allowed on this disk node: start vda-agent with "+
			"--aio-dir DIR (repeatable; agent.Config.AioDirs) naming the directories or devices they may use", errAioRefused)
	}
	real, err := filepath.EvalSymlinks(file)
	if err != nil {
		return "", nil, fmt.Errorf("%w: aio file %q: %w", errAioRefused, file, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", nil, fmt.Errorf("%w: aio file %q: %w", errAioRefused, file, err)
	}
	blockDev := fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	if !fi.Mode().IsRegular() && !blockDev {
		return "", nil, fmt.Errorf("%w: aio file %q (%s) is not a regular file or a block device", errAioRefused, file, real)
	}
	for _, dir := range p.dirs {
		d, err := filepath.EvalSymlinks(dir)
		if err != nil {
			continue // an allowed directory that does not exist allows nothing
		}
		if rel, err := filepath.Rel(d, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return real, fi, nil
		}
	}
	return "", nil, fmt.Errorf("%w: aio file %q (%s) is outside the directories aio PDs may use (%s; vda-agent --aio-dir)",
		errAioRefused, file, real, strings.Join(p.dirs, ", "))
}

// check decides whether PD pdID may put its lvstore on the resolved file
// real: yes if its first MiB is all zeros, or it holds the PD's own lvstore
// (a restart, or a PD moved to another node), or force is set.
func (p aioPolicy) check(pdID, file, real string, fi os.FileInfo, force bool) error {
	f, err := os.Open(real)
	if err != nil {
		return fmt.Errorf("%w: aio file %q: %w", errAioRefused, file, err)
	}
	defer f.Close()
	size := fi.Size()
	if !fi.Mode().IsRegular() {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			return fmt.Errorf("%w: aio device %q: size: %w", errAioRefused, file, err)
		}
	}
	head := make([]byte, min(size, aioProbeBytes))
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: aio file %q: %w", errAioRefused, file, err)
	}
	if allZero(head) {
		return nil // blank
	}
	want := nvmeof.PDLvstoreName(pdID)
	found := ""
	for _, read := range p.labels {
		if name, ok := read(f, size); ok {
			if name == want {
				return nil
			}
			found = name
		}
	}
	if force {
		return nil
	}
	holds := "data (its first MiB is not all zeros) and no lvstore"
	if found != "" {
		holds = fmt.Sprintf("lvstore %q, not this PD's %s", found, want)
	}
	return fmt.Errorf("%w: aio file %q holds %s: not formatting it; "+
		"create the PD with --force (pd create --force) to overwrite it", errAioRefused, file, holds)
}

// SPDK blobstore layout (lib/blob/blobstore.h, v24.01): the super block at
// offset 0 and the metadata pages of 4 KiB from page md_start on; an
// lvstore is a blobstore of type "LVOLSTORE" whose super blob carries the
// lvstore's name in its xattr "name".
const (
	bsPageSize        = 4096
	bsSignature       = "SPDKBLOB"
	bsSuperBlobOff    = 0x14 // spdk_blob_id super_blob
	bsMDStartOff      = 0x30 // uint32 md_start (in pages)
	bsMDLenOff        = 0x34 // uint32 md_len (in pages)
	bsTypeOff         = 0x38 // char bstype[16]
	bsLvolstoreType   = "LVOLSTORE"
	mdDescriptorsOff  = 16 // after blob id (8), sequence_num (4), reserved (4)
	mdDescriptorsEnd  = bsPageSize - 8
	mdDescXattr       = 2
	mdDescPadding     = 0
	mdDescHeaderBytes = 5 // type (1), length (4)
)

// SPDKLvstoreLabel reads the name of the SPDK lvstore on a device (from its
// blobstore's super blob), as real SPDK writes it.
func SPDKLvstoreLabel(r io.ReaderAt, size int64) (string, bool) {
	sb := make([]byte, bsPageSize)
	if size < bsPageSize {
		return "", false
	}
	if _, err := r.ReadAt(sb, 0); err != nil || string(sb[:8]) != bsSignature {
		return "", false
	}
	if string(bytes.TrimRight(sb[bsTypeOff:bsTypeOff+16], "\x00")) != bsLvolstoreType {
		return "", false
	}
	le := binary.LittleEndian
	superBlob := le.Uint64(sb[bsSuperBlobOff:])
	mdStart, mdLen := uint64(le.Uint32(sb[bsMDStartOff:])), uint64(le.Uint32(sb[bsMDLenOff:]))
	page := superBlob & 0xffffffff
	if page >= mdLen || (mdStart+page+1)*bsPageSize > uint64(size) {
		return "", false
	}
	md := make([]byte, bsPageSize)
	if _, err := r.ReadAt(md, int64((mdStart+page)*bsPageSize)); err != nil || le.Uint64(md) != superBlob {
		return "", false
	}
	for off := mdDescriptorsOff; off+mdDescHeaderBytes <= mdDescriptorsEnd; {
		typ, length := md[off], int(le.Uint32(md[off+1:]))
		off += mdDescHeaderBytes
		if typ == mdDescPadding || length < 0 || off+length > mdDescriptorsEnd {
			break
		}
		desc := md[off : off+length]
		off += length
		if typ != mdDescXattr || len(desc) < 4 {
			continue
		}
		nameLen, valueLen := int(le.Uint16(desc)), int(le.Uint16(desc[2:]))
		if 4+nameLen+valueLen > len(desc) || string(desc[4:4+nameLen]) != "name" {
			continue
		}
		return string(bytes.TrimRight(desc[4+nameLen:4+nameLen+valueLen], "\x00")), true
	}
	return "", false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// blank zeroes the first aioProbeBytes of a deleted aio PD's file (inside
// an allowed directory only), which held its lvstore's metadata, so that a
// PD created on it again finds it blank and needs no force.
func (p aioPolicy) blank(file string) error {
	real, fi, err := p.resolve(file)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(real, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n := int64(aioProbeBytes)
	if fi.Mode().IsRegular() {
		n = min(n, fi.Size())
	}
	_, werr := f.WriteAt(make([]byte, n), 0)
	return errors.Join(werr, f.Sync(), f.Close())
}
