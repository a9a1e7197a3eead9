package bufpool

import "sync"

// Pool recycles buffers. The zero Pool keeps buffers of any size; it must
// not be copied after first use.
type Pool struct {
	// Max is the largest capacity Put keeps for reuse; 0 keeps any.
	Max int
	p   sync.Pool
}

// Get returns a buffer of length n: a recycled one, holding what its last
// user left in it, or a new one.
func (p *Pool) Get(n int) *[]byte {
	if b, ok := p.p.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// GetZeroed returns a buffer of length n holding zeros, as a new one does.
func (p *Pool) GetZeroed(n int) *[]byte {
	if b, ok := p.p.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		clear(*b)
		return b
	}
	b := make([]byte, n)
	return &b
}

// Put hands b back for reuse; its user must not touch it afterwards.
func (p *Pool) Put(b *[]byte) {
	if p.Max == 0 || cap(*b) <= p.Max {
		p.p.Put(b)
	}
}
