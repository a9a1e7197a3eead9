package spdktest

import (
	"errors"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// reblock presents members with different block sizes at the smallest one:
// SPDK v24.01 accepted a raid0 of 4096- and 512-byte bdevs and made a
// 512-byte raid (a bug the fake keeps, see methods.md).
func reblock(members []blockdev.Device) []blockdev.Device {
	bs := members[0].BlockSize()
	same := true
	for _, m := range members {
		same = same && m.BlockSize() == bs
		bs = min(bs, m.BlockSize())
	}
	if same {
		return members
	}
	out := make([]blockdev.Device, len(members))
	for i, m := range members {
		out[i] = reblocked{Device: m, bs: bs}
	}
	return out
}

type reblocked struct {
	blockdev.Device
	bs uint32
}

func (r reblocked) BlockSize() uint32 { return r.bs }
func (r reblocked) NumBlocks() uint64 {
	return r.Device.NumBlocks() * uint64(r.Device.BlockSize()) / uint64(r.bs)
}

// concat joins members end to end, each rounded down to whole strips.
type concat struct {
	bs      uint32
	members []blockdev.Device
	sizes   []uint64 // usable blocks per member
	total   uint64
}

func newConcat(members []blockdev.Device, stripBlocks uint64) (*concat, error) {
	if len(members) == 0 || stripBlocks == 0 {
		return nil, blockdev.ErrOutOfRange
	}
	c := &concat{bs: members[0].BlockSize(), members: members}
	for _, m := range members {
		n := m.NumBlocks() / stripBlocks * stripBlocks
		c.sizes = append(c.sizes, n)
		c.total += n
	}
	return c, nil
}

func (c *concat) BlockSize() uint32 { return c.bs }
func (c *concat) NumBlocks() uint64 { return c.total }

func (c *concat) ReadAt(p []byte, off int64) (int, error) {
	return c.do(p, off, func(d blockdev.Device, b []byte, o int64) (int, error) { return d.ReadAt(b, o) })
}

func (c *concat) WriteAt(p []byte, off int64) (int, error) {
	return c.do(p, off, func(d blockdev.Device, b []byte, o int64) (int, error) { return d.WriteAt(b, o) })
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

// mirror is raid1: writes go to every member, reads come from the first.
type mirror struct {
	members []blockdev.Device
	blocks  uint64
}

func newMirror(members []blockdev.Device) (*mirror, error) {
	if len(members) == 0 {
		return nil, blockdev.ErrOutOfRange
	}
	m := &mirror{members: members, blocks: members[0].NumBlocks()}
	for _, d := range members {
		m.blocks = min(m.blocks, d.NumBlocks()*uint64(d.BlockSize())/uint64(members[0].BlockSize()))
	}
	return m, nil
}

func (m *mirror) BlockSize() uint32 { return m.members[0].BlockSize() }
func (m *mirror) NumBlocks() uint64 { return m.blocks }

func (m *mirror) ReadAt(p []byte, off int64) (int, error) { return m.members[0].ReadAt(p, off) }

func (m *mirror) WriteAt(p []byte, off int64) (int, error) {
	var errs []error
	n := len(p)
	for _, d := range m.members {
		k, err := d.WriteAt(p, off)
		errs = append(errs, err)
		n = min(n, k)
	}
	return n, errors.Join(errs...)
}
