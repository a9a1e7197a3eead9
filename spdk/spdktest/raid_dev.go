package spdktest

import (
	"errors"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// The raid's data path: members are windows onto their bdevs (the data
// area after a superblock), striped (raid0), joined (concat) or mirrored
// (raid1). Offsets are in bytes of the raid's block length; SPDK v24.01
// addresses members of another block size in the raid's blocks too (a bug
// it lets through), which a window keeps by offsetting in bytes.

// errMemberGone fails I/O that reaches a member the raid lost.
var errMemberGone = errors.New("raid member is gone")

// window is [off, off+blocks*bs) of dev.
type window struct {
	dev    blockdev.Device
	bs     uint32
	off    int64
	blocks uint64
}

func (w window) BlockSize() uint32 { return w.bs }
func (w window) NumBlocks() uint64 { return w.blocks }

func (w window) ReadAt(p []byte, off int64) (int, error) {
	if err := w.check(p, off); err != nil {
		return 0, err
	}
	return w.dev.ReadAt(p, w.off+off)
}

func (w window) WriteAt(p []byte, off int64) (int, error) {
	if err := w.check(p, off); err != nil {
		return 0, err
	}
	return w.dev.WriteAt(p, w.off+off)
}

func (w window) check(p []byte, off int64) error {
	end := w.off + off + int64(len(p))
	if off < 0 || uint64(off)+uint64(len(p)) > w.blocks*uint64(w.bs) || end > blockdev.SizeBytes(w.dev) {
		return blockdev.ErrOutOfRange
	}
	return nil
}

// missingDev stands for a lost member.
type missingDev struct {
	bs     uint32
	blocks uint64
}

func (m missingDev) BlockSize() uint32                        { return m.bs }
func (m missingDev) NumBlocks() uint64                        { return m.blocks }
func (m missingDev) ReadAt(p []byte, off int64) (int, error)  { return 0, errMemberGone }
func (m missingDev) WriteAt(p []byte, off int64) (int, error) { return 0, errMemberGone }

// stripeDev is raid0: strip-sized chunks round-robin over the members,
// each contributing per bytes.
type stripeDev struct {
	bs      uint32
	strip   int64
	members []blockdev.Device
	per     int64
	blocks  uint64
}

// Stripes implements blockdev.Striper: the lvstore on a raid0 checks one
// metadata unit per member when it loads (blockdev.LoadLvstore).
func (d *stripeDev) Stripes() (int64, int) { return d.strip, len(d.members) }

func (d *stripeDev) BlockSize() uint32 { return d.bs }
func (d *stripeDev) NumBlocks() uint64 { return d.blocks }

func (d *stripeDev) ReadAt(p []byte, off int64) (int, error) {
	return d.do(p, off, blockdev.Device.ReadAt)
}

func (d *stripeDev) WriteAt(p []byte, off int64) (int, error) {
	return d.do(p, off, blockdev.Device.WriteAt)
}

func (d *stripeDev) do(p []byte, off int64, op func(blockdev.Device, []byte, int64) (int, error)) (int, error) {
	if off < 0 || uint64(off)+uint64(len(p)) > d.blocks*uint64(d.bs) || d.strip <= 0 || len(d.members) == 0 {
		if len(p) == 0 && off >= 0 {
			return 0, nil
		}
		return 0, blockdev.ErrOutOfRange
	}
	done := 0
	n := int64(len(d.members))
	for done < len(p) {
		at := off + int64(done)
		stripe := at / d.strip
		in := at % d.strip
		k := min(int64(len(p)-done), d.strip-in)
		got, err := op(d.members[stripe%n], p[done:done+int(k)], stripe/n*d.strip+in)
		done += got
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// concat joins members end to end, each contributing sizes[i] blocks.
type concat struct {
	bs      uint32
	members []blockdev.Device
	sizes   []uint64
	total   uint64
}

func (c *concat) BlockSize() uint32 { return c.bs }
func (c *concat) NumBlocks() uint64 { return c.total }

func (c *concat) ReadAt(p []byte, off int64) (int, error) {
	return c.do(p, off, blockdev.Device.ReadAt)
}

func (c *concat) WriteAt(p []byte, off int64) (int, error) {
	return c.do(p, off, blockdev.Device.WriteAt)
}

func (c *concat) do(p []byte, off int64, op func(blockdev.Device, []byte, int64) (int, error)) (int, error) {
	if off < 0 || uint64(off)+uint64(len(p)) > c.total*uint64(c.bs) {
		return 0, blockdev.ErrOutOfRange
	}
	done := 0
	base := int64(0)
	for i, m := range c.members {
		size := int64(c.sizes[i]) * int64(c.bs)
		for done < len(p) && off+int64(done) < base+size {
			at := off + int64(done) - base
			n := min(int64(len(p)-done), size-at)
			k, err := op(m, p[done:done+int(n)], at)
			done += k
			if err != nil {
				return done, err
			}
		}
		base += size
	}
	return done, nil
}

// mirror is raid1 over its present members: writes go to each, reads come
// from the first.
type mirror struct {
	bs      uint32
	members []blockdev.Device
	blocks  uint64
}

func (m *mirror) BlockSize() uint32 { return m.bs }
func (m *mirror) NumBlocks() uint64 { return m.blocks }

func (m *mirror) ReadAt(p []byte, off int64) (int, error) {
	if err := m.check(p, off); err != nil {
		return 0, err
	}
	return m.members[0].ReadAt(p, off)
}

func (m *mirror) WriteAt(p []byte, off int64) (int, error) {
	if err := m.check(p, off); err != nil {
		return 0, err
	}
	var errs []error
	n := len(p)
	for _, d := range m.members {
		k, err := d.WriteAt(p, off)
		errs = append(errs, err)
		n = min(n, k)
	}
	return n, errors.Join(errs...)
}

func (m *mirror) check(p []byte, off int64) error {
	if len(m.members) == 0 {
		return errMemberGone
	}
	if off < 0 || uint64(off)+uint64(len(p)) > m.blocks*uint64(m.bs) {
		return blockdev.ErrOutOfRange
	}
	return nil
}
