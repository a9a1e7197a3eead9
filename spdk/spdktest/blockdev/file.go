package blockdev

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// File is a disk whose bytes live in a regular file (the fake's aio bdev),
// so data survives closing and reopening, or a restart of the fake.
type File struct {
	f         *os.File
	blockSize uint32
	numBlocks atomic.Uint64 // changes on Rescan

	mu     sync.RWMutex // guards closed against Close racing with I/O
	closed bool
}

var (
	_ Device = (*File)(nil)
	_ Zeroer = (*File)(nil)
)

// OpenFile opens an existing file as a disk of size/blockSize blocks (a
// trailing partial block is ignored, as aio does).
func OpenFile(path string, blockSize uint32) (*File, error) {
	if blockSize == 0 || blockSize%512 != 0 {
		return nil, fmt.Errorf("%w: block size %d", ErrInvalid, blockSize)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("blockdev: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("blockdev: stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, path)
	}
	d := &File{f: f, blockSize: blockSize}
	d.numBlocks.Store(uint64(st.Size()) / uint64(blockSize))
	return d, nil
}

// CreateFile creates (or truncates) a sparse file of sizeBytes and opens it.
func CreateFile(path string, blockSize uint32, sizeBytes int64) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blockdev: create %s: %w", path, err)
	}
	err = f.Truncate(sizeBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("blockdev: size %s: %w", path, err)
	}
	return OpenFile(path, blockSize)
}

// Path is the backing file's name.
func (d *File) Path() string { return d.f.Name() }

// BlockSize implements Device.
func (d *File) BlockSize() uint32 { return d.blockSize }

// NumBlocks implements Device.
func (d *File) NumBlocks() uint64 { return d.numBlocks.Load() }

// Size is the backing file's current size in bytes.
func (d *File) Size() (int64, error) {
	st, err := d.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("blockdev: stat %s: %w", d.f.Name(), err)
	}
	return st.Size(), nil
}

// SetNumBlocks changes the disk's size after its file was resized
// (bdev_aio_rescan).
func (d *File) SetNumBlocks(n uint64) { d.numBlocks.Store(n) }

// ReadAt implements Device.
func (d *File) ReadAt(p []byte, off int64) (int, error) {
	if err := checkIO(d.blockSize, d.numBlocks.Load(), len(p), off); err != nil {
		return 0, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, ErrClosed
	}
	n, err := d.f.ReadAt(p, off)
	if err != nil && n < len(p) {
		// A file shrunk behind our back reads as zeros past its end.
		clear(p[n:])
	}
	return len(p), nil
}

// WriteAt implements Device.
func (d *File) WriteAt(p []byte, off int64) (int, error) {
	if err := checkIO(d.blockSize, d.numBlocks.Load(), len(p), off); err != nil {
		return 0, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, ErrClosed
	}
	n, err := d.f.WriteAt(p, off)
	if err != nil {
		return n, fmt.Errorf("blockdev: write %s: %w", d.f.Name(), err)
	}
	return n, nil
}

// WriteZeroes implements Zeroer by punching a hole where the OS can.
func (d *File) WriteZeroes(off, length int64) error {
	if err := checkIO(d.blockSize, d.numBlocks.Load(), int(length), off); err != nil {
		return err
	}
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return ErrClosed
	}
	err := punchHole(d.f, off, length)
	d.mu.RUnlock()
	if err == nil {
		return nil
	}
	return WriteZeroes(plainDevice{d}, off, length)
}

// Sync flushes the file to stable storage.
func (d *File) Sync() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	return d.f.Sync()
}

// Close releases the file; later I/O fails with ErrClosed. Idempotent.
func (d *File) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.f.Close()
}

// plainDevice hides a device's optional capabilities.
type plainDevice struct{ Device }
