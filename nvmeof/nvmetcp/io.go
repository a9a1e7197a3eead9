package nvmetcp

import (
	"context"
	"errors"
	"fmt"
)

// ReadAt reads len(p) bytes of namespace nsid at byte offset off into p.
// off and len(p) must be whole blocks within the namespace. Requests
// larger than the controller's largest transfer are split into commands
// that run concurrently; the call succeeds only if all of them did.
func (c *Controller) ReadAt(ctx context.Context, nsid uint32, p []byte, off int64) error {
	return c.rw(ctx, opcRead, nsid, p, off)
}

// WriteAt writes p to namespace nsid at byte offset off (whole blocks, as
// for ReadAt). Writes that fit the in-capsule data size go with the
// command; larger ones are fetched by the target (R2T, H2CData). When it
// returns nil, every byte was acknowledged by the target.
func (c *Controller) WriteAt(ctx context.Context, nsid uint32, p []byte, off int64) error {
	return c.rw(ctx, opcWrite, nsid, p, off)
}

func (c *Controller) rw(ctx context.Context, opc uint8, nsid uint32, p []byte, off int64) error {
	op, dir := "read", dirRead
	if opc == opcWrite {
		op, dir = "write", dirWrite
	}
	ni, err := c.Namespace(ctx, nsid)
	if err != nil {
		return fmt.Errorf("nvmetcp: %s namespace %d: %w", op, nsid, err)
	}
	bs := int64(ni.BlockSize)
	switch {
	case len(p) == 0:
		return fmt.Errorf("%w: %s of 0 bytes", ErrInvalid, op)
	case off < 0 || off%bs != 0 || int64(len(p))%bs != 0:
		return fmt.Errorf("%w: %s of %d bytes at %d: not whole %d-byte blocks", ErrInvalid, op, len(p), off, bs)
	case uint64(off/bs)+uint64(int64(len(p))/bs) > ni.Blocks:
		return fmt.Errorf("%w: %s of %d bytes at %d: beyond the namespace's %d blocks", ErrInvalid, op, len(p),
			off, ni.Blocks)
	}
	chunk := int64(1<<16) * bs // NLB is 16 bits
	if c.maxIO > 0 {
		chunk = min(chunk, int64(c.maxIO)/bs*bs)
	}
	if chunk < bs {
		return fmt.Errorf("%w: blocks of %d bytes exceed the largest transfer (%d)", ErrInvalid, bs, c.maxIO)
	}
	reqs := make([]*request, 0, (int64(len(p))+chunk-1)/chunk)
	var errs []error
	for done := int64(0); done < int64(len(p)); done += chunk {
		n := min(chunk, int64(len(p))-done)
		cmd := rwCommand(opc, nsid, uint64((off+done)/bs), uint32(n/bs))
		r, err := c.io.submit(ctx, cmd, dir, p[done:done+n], c.o.CommandTimeout)
		if err != nil {
			errs = append(errs, err)
			break
		}
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		cpl, err := c.io.wait(ctx, r)
		if err == nil {
			err = cpl.statusError(op)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("nvmetcp: %s namespace %d, %d bytes at %d: %w", op, nsid, len(p), off, firstErr(errs))
	}
	return nil
}

// firstErr returns the error that explains the others: a transport
// failure fails every command, so one is enough.
func firstErr(errs []error) error {
	for _, err := range errs {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return errs[0]
}
