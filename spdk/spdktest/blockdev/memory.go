package blockdev

import "sync"

// memChunkTarget is the size of one allocation unit of a Memory device.
const memChunkTarget = 64 << 10

// Memory is a sparse in-memory disk (the fake's malloc bdev). Blocks that
// were never written, or were zeroed, take no memory and read as zeros.
type Memory struct {
	blockSize uint32
	numBlocks uint64
	chunk     int64

	mu     sync.RWMutex
	chunks map[int64][]byte
}

var (
	_ Device = (*Memory)(nil)
	_ Zeroer = (*Memory)(nil)
)

// NewMemory returns a zero-filled sparse disk. A zero blockSize means 512.
func NewMemory(blockSize uint32, numBlocks uint64) *Memory {
	if blockSize == 0 {
		blockSize = 512
	}
	bs := int64(blockSize)
	chunk := (memChunkTarget + bs - 1) / bs * bs
	return &Memory{blockSize: blockSize, numBlocks: numBlocks, chunk: chunk, chunks: map[int64][]byte{}}
}

// BlockSize implements Device.
func (m *Memory) BlockSize() uint32 { return m.blockSize }

// NumBlocks implements Device.
func (m *Memory) NumBlocks() uint64 { return m.numBlocks }

// AllocatedBytes is how much memory the written blocks take.
func (m *Memory) AllocatedBytes() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.chunks)) * m.chunk
}

// ReadAt implements Device.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	if err := checkIO(m.blockSize, m.numBlocks, len(p), off); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.walk(p, off, func(idx, in int64, seg []byte) {
		if c, ok := m.chunks[idx]; ok {
			copy(seg, c[in:])
		} else {
			clear(seg)
		}
	})
	return len(p), nil
}

// WriteAt implements Device.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	if err := checkIO(m.blockSize, m.numBlocks, len(p), off); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.walk(p, off, func(idx, in int64, seg []byte) {
		c, ok := m.chunks[idx]
		if !ok {
			c = make([]byte, m.chunk)
			m.chunks[idx] = c
		}
		copy(c[in:], seg)
	})
	return len(p), nil
}

// WriteZeroes implements Zeroer: whole chunks are released.
func (m *Memory) WriteZeroes(off, length int64) error {
	if err := checkIO(m.blockSize, m.numBlocks, int(length), off); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if length/m.chunk > int64(len(m.chunks)) {
		// A huge range on a sparse disk: visit the chunks that exist.
		for idx, c := range m.chunks {
			lo, hi := max(off, idx*m.chunk), min(off+length, (idx+1)*m.chunk)
			switch {
			case lo >= hi:
			case hi-lo == m.chunk:
				delete(m.chunks, idx)
			default:
				clear(c[lo-idx*m.chunk : hi-idx*m.chunk])
			}
		}
		return nil
	}
	for length > 0 {
		idx, in := off/m.chunk, off%m.chunk
		n := min(m.chunk-in, length)
		if c, ok := m.chunks[idx]; ok {
			if n == m.chunk {
				delete(m.chunks, idx)
			} else {
				clear(c[in : in+n])
			}
		}
		off += n
		length -= n
	}
	return nil
}

// walk calls fn for each chunk-sized piece of p starting at device offset
// off, with the chunk index and the offset inside the chunk.
func (m *Memory) walk(p []byte, off int64, fn func(idx, in int64, seg []byte)) {
	for len(p) > 0 {
		idx, in := off/m.chunk, off%m.chunk
		n := min(m.chunk-in, int64(len(p)))
		fn(idx, in, p[:n])
		p = p[n:]
		off += n
	}
}
