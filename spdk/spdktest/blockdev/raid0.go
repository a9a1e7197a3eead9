package blockdev

import (
	"fmt"
	"slices"
)

// Raid0 stripes its members: strip i of the array is strip i/n of member
// i%n. Its size is n times the smallest member rounded down to whole
// strips, as SPDK's raid0 computes it.
type Raid0 struct {
	members     []Device
	blockSize   uint32
	strip       int64 // strip size in bytes
	memberBytes int64 // usable bytes per member
}

var (
	_ Device  = (*Raid0)(nil)
	_ Zeroer  = (*Raid0)(nil)
	_ Striper = (*Raid0)(nil)
)

// NewRaid0 builds a raid0 over members (in that order) with a strip of
// stripSizeKB KiB, a power of two no smaller than the block size.
func NewRaid0(members []Device, stripSizeKB uint32) (*Raid0, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: raid0 needs at least one member", ErrInvalid)
	}
	for i, m := range members {
		if m == nil {
			return nil, fmt.Errorf("%w: raid0 member %d is nil", ErrInvalid, i)
		}
	}
	bs := members[0].BlockSize()
	smallest := members[0].NumBlocks()
	for i, m := range members[1:] {
		if m.BlockSize() != bs {
			return nil, fmt.Errorf("%w: member %d block size %d differs from %d", ErrInvalid, i+1, m.BlockSize(), bs)
		}
		smallest = min(smallest, m.NumBlocks())
	}
	strip := int64(stripSizeKB) * 1024
	if stripSizeKB == 0 || stripSizeKB&(stripSizeKB-1) != 0 || bs == 0 || strip < int64(bs) || strip%int64(bs) != 0 {
		return nil, fmt.Errorf("%w: strip size %d KiB with block size %d", ErrInvalid, stripSizeKB, bs)
	}
	memberBytes := int64(smallest) * int64(bs) / strip * strip
	return &Raid0{members: slices.Clone(members), blockSize: bs, strip: strip, memberBytes: memberBytes}, nil
}

// Members returns the members in stripe order.
func (r *Raid0) Members() []Device { return slices.Clone(r.members) }

// Stripes implements Striper.
func (r *Raid0) Stripes() (strip int64, members int) { return r.strip, len(r.members) }

// StripSizeKB is the strip size in KiB.
func (r *Raid0) StripSizeKB() uint32 { return uint32(r.strip / 1024) }

// BlockSize implements Device.
func (r *Raid0) BlockSize() uint32 { return r.blockSize }

// NumBlocks implements Device.
func (r *Raid0) NumBlocks() uint64 {
	return uint64(r.memberBytes) * uint64(len(r.members)) / uint64(r.blockSize)
}

// Locate maps an array offset to a member index and the offset inside it.
func (r *Raid0) Locate(off int64) (member int, memberOff int64) {
	s := off / r.strip
	n := int64(len(r.members))
	return int(s % n), (s/n)*r.strip + off%r.strip
}

// ReadAt implements Device.
func (r *Raid0) ReadAt(p []byte, off int64) (int, error) {
	return r.split(p, off, func(d Device, seg []byte, moff int64) error {
		_, err := d.ReadAt(seg, moff)
		return err
	})
}

// WriteAt implements Device.
func (r *Raid0) WriteAt(p []byte, off int64) (int, error) {
	return r.split(p, off, func(d Device, seg []byte, moff int64) error {
		_, err := d.WriteAt(seg, moff)
		return err
	})
}

// WriteZeroes implements Zeroer, passing the zeroing on to each member:
// partial stripes strip by strip, whole stripes as one range per member.
func (r *Raid0) WriteZeroes(off, length int64) error {
	if err := checkIO(r.blockSize, r.NumBlocks(), int(length), off); err != nil {
		return err
	}
	row := r.strip * int64(len(r.members))
	for length > 0 {
		if off%row == 0 && length >= row {
			rows := length / row
			for i, m := range r.members {
				if err := WriteZeroes(m, off/row*r.strip, rows*r.strip); err != nil {
					return fmt.Errorf("blockdev: raid0 member %d: %w", i, err)
				}
			}
			off += rows * row
			length -= rows * row
			continue
		}
		i, moff := r.Locate(off)
		n := min(r.strip-off%r.strip, length)
		if err := WriteZeroes(r.members[i], moff, n); err != nil {
			return fmt.Errorf("blockdev: raid0 member %d: %w", i, err)
		}
		off += n
		length -= n
	}
	return nil
}

func (r *Raid0) split(p []byte, off int64, fn func(Device, []byte, int64) error) (int, error) {
	if err := checkIO(r.blockSize, r.NumBlocks(), len(p), off); err != nil {
		return 0, err
	}
	done := 0
	for done < len(p) {
		i, moff := r.Locate(off)
		n := min(r.strip-off%r.strip, int64(len(p)-done))
		if err := fn(r.members[i], p[done:done+int(n)], moff); err != nil {
			return done, fmt.Errorf("blockdev: raid0 member %d: %w", i, err)
		}
		done += int(n)
		off += n
	}
	return done, nil
}
