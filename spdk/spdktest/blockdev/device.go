package blockdev

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers match them with errors.Is.
var (
	ErrOutOfRange = errors.New("blockdev: out of range")
	ErrNoLvstore  = errors.New("blockdev: no lvstore")
	ErrNoSpace    = errors.New("blockdev: no space left")
	ErrExists     = errors.New("blockdev: already exists")
	ErrNotFound   = errors.New("blockdev: not found")
	ErrBusy       = errors.New("blockdev: busy")
	ErrInvalid    = errors.New("blockdev: invalid argument")
	ErrReadOnly   = errors.New("blockdev: read-only")
	ErrClosed     = errors.New("blockdev: closed")
)

// Device is what every bdev exposes to the data path. Offsets and lengths
// are multiples of BlockSize.
type Device interface {
	BlockSize() uint32
	NumBlocks() uint64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
}

// Zeroer is an optional Device capability: zero a range cheaply (unmap,
// write_zeroes). Devices without it are zeroed with ordinary writes.
type Zeroer interface {
	WriteZeroes(off, length int64) error
}

// SizeBytes is the capacity of d in bytes.
func SizeBytes(d Device) int64 {
	return int64(d.NumBlocks()) * int64(d.BlockSize())
}

// checkIO validates an I/O of n bytes at off against a device of the given
// geometry.
func checkIO(blockSize uint32, numBlocks uint64, n int, off int64) error {
	bs := int64(blockSize)
	if bs == 0 || off < 0 || n < 0 || off%bs != 0 || int64(n)%bs != 0 {
		return fmt.Errorf("%w: offset %d length %d not aligned to block size %d", ErrInvalid, off, n, blockSize)
	}
	if uint64(off)/uint64(bs)+uint64(int64(n)/bs) > numBlocks {
		return fmt.Errorf("%w: offset %d length %d beyond %d blocks", ErrOutOfRange, off, n, numBlocks)
	}
	return nil
}

// zeroChunk is shared read-only zeros for writing zeros to devices that
// are not Zeroers.
var zeroChunk = make([]byte, 1<<20)

// WriteZeroes zeroes [off, off+length) on d, using its Zeroer capability
// when it has one.
func WriteZeroes(d Device, off, length int64) error {
	if length == 0 {
		return nil
	}
	if z, ok := d.(Zeroer); ok {
		return z.WriteZeroes(off, length)
	}
	if err := checkIO(d.BlockSize(), d.NumBlocks(), int(length), off); err != nil {
		return err
	}
	bs := int64(d.BlockSize())
	step := int64(len(zeroChunk)) / bs * bs
	if step == 0 {
		step = bs
	}
	for length > 0 {
		n := min(step, length)
		buf := zeroChunk
		if int64(len(buf)) < n {
			buf = make([]byte, n)
		}
		if _, err := d.WriteAt(buf[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}
