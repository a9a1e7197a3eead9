package fabric

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// BlockIO is what a workload drives: a Multipath, or anything that reads
// and writes a namespace and retries on its own.
type BlockIO interface {
	ReadAt(ctx context.Context, nsid uint32, p []byte, off int64) error
	WriteAt(ctx context.Context, nsid uint32, p []byte, off int64) error
}

var _ BlockIO = (*Multipath)(nil)

// SeqWorkload writes numbered blocks one at a time, in order, over a ring of
// Blocks blocks: write number s goes to block s mod Blocks and carries s,
// its block index and RunID in a header, then a pattern derived from both.
// Because writes are acknowledged in order, the result proves exactly what
// must be on the device afterwards (see VerifySeq): nothing acknowledged
// may be lost, whatever failed in between.
type SeqWorkload struct {
	NSID      uint32
	BlockSize uint32 // bytes per block (the namespace's block size)
	Blocks    uint64 // ring size in blocks; must fit the namespace
	RunID     uint64 // tells this run's blocks from older ones; 0 picks one
	// Count stops after that many acknowledged writes (0: no limit),
	// Duration after that long (0: no limit), Stop when it is closed.
	Count    uint64
	Duration time.Duration
	Stop     <-chan struct{}
	// OnAck, if set, is called with the number of acknowledged writes
	// after each one (from the writing goroutine: keep it cheap).
	OnAck func(acked uint64)
}

// SeqResult is what a SeqWorkload run acknowledged.
type SeqResult struct {
	RunID     uint64 `json:"run_id"`
	NSID      uint32 `json:"nsid"`
	BlockSize uint32 `json:"block_size"`
	Blocks    uint64 `json:"blocks"`
	// Acked writes are numbers 0..Acked-1; write number Acked may or may
	// not have landed (it was in flight when the run ended).
	Acked uint64 `json:"acked"`
	// MaxGap is the longest time between two consecutive acknowledgements
	// (or from the start to the first): what a failover cost this host.
	MaxGap  time.Duration `json:"max_gap_ns"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Err is why the run ended early, if it did ("" when it ran its course).
	Err string `json:"error,omitempty"`
}

const seqMagic = 0x5644414853455131 // "VDAHSEQ1"

const seqHeaderLen = 32

// ErrVerify is returned by VerifySeq for a block that does not hold what
// the acknowledged writes put there.
var ErrVerify = errors.New("fabric: verify failed")

func (w SeqWorkload) validate() error {
	switch {
	case w.BlockSize < seqHeaderLen || w.BlockSize%512 != 0:
		return fmt.Errorf("%w: block size %d", ErrInvalid, w.BlockSize)
	case w.Blocks == 0:
		return fmt.Errorf("%w: no blocks", ErrInvalid)
	}
	return nil
}

// fillSeqBlock writes write number seq of run into b.
func fillSeqBlock(b []byte, run, seq, blocks uint64) {
	binary.LittleEndian.PutUint64(b[0:], seqMagic)
	binary.LittleEndian.PutUint64(b[8:], run)
	binary.LittleEndian.PutUint64(b[16:], seq)
	binary.LittleEndian.PutUint64(b[24:], seq%blocks)
	r := rand.New(rand.NewPCG(run, seq))
	for i := seqHeaderLen; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
}

// RunSeq runs w against dev. Every write is retried by dev until ctx ends;
// the run then stops with ctx's error in the result. The result is valid
// (and must be verified) whether or not an error is returned.
func RunSeq(ctx context.Context, dev BlockIO, w SeqWorkload) (res SeqResult, err error) {
	if err := w.validate(); err != nil {
		return SeqResult{}, err
	}
	if w.RunID == 0 {
		w.RunID = rand.Uint64() | 1
	}
	res = SeqResult{RunID: w.RunID, NSID: w.NSID, BlockSize: w.BlockSize, Blocks: w.Blocks}
	var deadline <-chan time.Time
	if w.Duration > 0 {
		t := time.NewTimer(w.Duration)
		defer t.Stop()
		deadline = t.C
	}
	buf := make([]byte, w.BlockSize)
	start := time.Now()
	last := start
	// res is a named result, so this lands in what the caller gets (with
	// an unnamed one the copy returned was made before it ran: 0).
	defer func() { res.Elapsed = time.Since(start) }()
	for w.Count == 0 || res.Acked < w.Count {
		select {
		case <-w.Stop:
			return res, nil
		case <-deadline:
			return res, nil
		default:
		}
		seq := res.Acked
		fillSeqBlock(buf, w.RunID, seq, w.Blocks)
		if err := dev.WriteAt(ctx, w.NSID, buf, int64(seq%w.Blocks)*int64(w.BlockSize)); err != nil {
			res.Err = err.Error()
			return res, err
		}
		now := time.Now()
		res.MaxGap = max(res.MaxGap, now.Sub(last))
		last = now
		res.Acked++
		if w.OnAck != nil {
			w.OnAck(res.Acked)
		}
	}
	return res, nil
}

// VerifySeq reads back every block res covers and checks that each holds
// the last acknowledged write to it (or, for the one block the unfinished
// write number res.Acked went to, possibly that write).
func VerifySeq(ctx context.Context, dev BlockIO, res SeqResult) error {
	w := SeqWorkload{NSID: res.NSID, BlockSize: res.BlockSize, Blocks: res.Blocks, RunID: res.RunID}
	if err := w.validate(); err != nil {
		return err
	}
	const chunk = 64
	bs := uint64(res.BlockSize)
	buf := make([]byte, chunk*bs)
	want := make([]byte, bs)
	var errs []error
	for first := uint64(0); first < res.Blocks && first < res.Acked+1; first += chunk {
		n := min(chunk, res.Blocks-first)
		if err := dev.ReadAt(ctx, res.NSID, buf[:n*bs], int64(first*bs)); err != nil {
			return fmt.Errorf("fabric: verify: read blocks %d..%d: %w", first, first+n-1, err)
		}
		for i := uint64(0); i < n; i++ {
			if err := checkSeqBlock(buf[i*bs:(i+1)*bs], want, res, first+i); err != nil {
				errs = append(errs, err)
				if len(errs) >= 10 {
					return errors.Join(errs...)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkSeqBlock checks block b against the writes of res.
func checkSeqBlock(got, want []byte, res SeqResult, b uint64) error {
	// The last acknowledged write to block b, if any.
	var expect uint64
	acked := res.Acked > b
	if acked {
		expect = b + (res.Acked-1-b)/res.Blocks*res.Blocks
	}
	inflight := res.Acked%res.Blocks == b
	seq := binary.LittleEndian.Uint64(got[16:])
	switch {
	case inflight && seq == res.Acked && binary.LittleEndian.Uint64(got[8:]) == res.RunID:
		expect = res.Acked
	case !acked:
		return nil // never written by an acknowledged write: anything goes
	}
	fillSeqBlock(want, res.RunID, expect, res.Blocks)
	if string(got) != string(want) {
		return fmt.Errorf("%w: block %d: want write %d of run %x, found write %d of run %x",
			ErrVerify, b, expect, res.RunID, seq, binary.LittleEndian.Uint64(got[8:]))
	}
	return nil
}
