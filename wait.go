package vda

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// Change is one write to a cluster object seen by Watch: Key is the
// object's spec key (KeyDA, KeyExp, ...), also when only its status (the
// monitor's report) changed.
type Change struct {
	Revision int64
	Key      string
	// Status: the object's status changed, not its spec.
	Status bool
	// Deleted: the key was deleted.
	Deleted bool
}

// Watch streams the changes of the cluster objects whose spec key starts
// with prefix (Prefix for everything, PrefixDA, KeyDA(name), KeyExps(da),
// ...), specs and statuses alike, from the store's next revision on. The
// channel is closed when ctx ends or the store's watch fails; the error
// function then says why (nil after ctx ended).
func (c *Cluster) Watch(ctx context.Context, prefix string) (<-chan Change, func() error, error) {
	if !strings.HasPrefix(prefix, Prefix) || strings.HasPrefix(prefix, PrefixStatus) {
		return nil, nil, fmt.Errorf("%w: watch prefix %q is not under %s (and not a status key)", ErrInvalidArgument, prefix, Prefix)
	}
	ctx, cancel := context.WithCancel(ctx)
	rev, err := c.s.Revision(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	// One watch over both the specs and the statuses keeps their changes
	// in revision order; the keys outside them are skipped.
	w, err := c.s.Watch(ctx, Prefix, rev+1)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	statusPrefix := KeyStatus(prefix)
	out := make(chan Change)
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer cancel()
		defer w.Close()
		for {
			var resp store.WatchResponse
			var ok bool
			select {
			case resp, ok = <-w.Events():
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
			if resp.Err != nil {
				werr = resp.Err
				return
			}
			for _, ev := range resp.Events {
				key, status := ev.KV.Key, false
				switch {
				case strings.HasPrefix(key, statusPrefix):
					key, status = Prefix+strings.TrimPrefix(key, PrefixStatus), true
				case strings.HasPrefix(key, PrefixStatus) || !strings.HasPrefix(key, prefix):
					continue
				}
				ch := Change{Revision: ev.KV.ModRevision, Key: key, Status: status, Deleted: ev.Type == store.EventDelete}
				select {
				case out <- ch:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, func() error { <-done; return werr }, nil
}

// WaitDiskArray reads disk array name (as GetDiskArray does) now and after
// every change of it or its status, until until returns true for what it
// read; it returns that read. until sees the error too: ErrNotFound is how
// a deleted (or not yet created) array looks. When ctx ends first,
// WaitDiskArray returns the last read and an error that wraps ctx's and
// says what the array looked like.
func (c *Cluster) WaitDiskArray(ctx context.Context, name string, until func(DiskArray, error) bool) (DiskArray, error) {
	if err := ValidateName(nvmeof.ResourceDA, name); err != nil {
		return DiskArray{}, err
	}
	return waitFor(ctx, c, KeyDA(name), func(ctx context.Context) (DiskArray, error) { return c.GetDiskArray(ctx, name) },
		until, func(da DiskArray) string {
			d := describeStatus(da.Status)
			if da.Status.AppliedSizeBytes != da.SizeBytes {
				d += fmt.Sprintf(", volume at %d of %d bytes", da.Status.AppliedSizeBytes, da.SizeBytes)
			}
			return d
		})
}

// WaitExporter is WaitDiskArray for exporter exp of disk array da.
func (c *Cluster) WaitExporter(ctx context.Context, da, exp string, until func(Exporter, error) bool) (Exporter, error) {
	if err := validateExpNames(da, exp); err != nil {
		return Exporter{}, err
	}
	return waitFor(ctx, c, KeyExp(da, exp), func(ctx context.Context) (Exporter, error) { return c.GetExporter(ctx, da, exp) },
		until, func(e Exporter) string { return describeStatus(e.Status) })
}

// Healthy is a WaitDiskArray / WaitExporter condition: the object exists
// and its status is healthy.
func Healthy[T DiskArray | Exporter](v T, err error) bool {
	if err != nil {
		return false
	}
	switch x := any(v).(type) {
	case DiskArray:
		return x.Status.Health == HealthHealthy
	case Exporter:
		return x.Status.Health == HealthHealthy
	}
	return false
}

// Resized returns a WaitDiskArray condition for a resize: the array
// exists, is healthy, and its primary reported its volume at size bytes
// or more (Status.AppliedSizeBytes). A healthy status alone does not say
// a ModifyDiskArray that grew the volume was applied: the array was
// healthy before, and stays so while the primary grows it.
//
//	da, err := c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{SizeBytes: &size})
//	...
//	da, err = c.WaitDiskArray(ctx, "da0", vda.Resized(size))
func Resized(size uint64) func(DiskArray, error) bool {
	return func(da DiskArray, err error) bool {
		return Healthy(da, err) && da.Status.AppliedSizeBytes >= size
	}
}

// Gone is a WaitDiskArray / WaitExporter condition: the object does not
// exist (any more).
func Gone[T any](_ T, err error) bool { return errors.Is(err, ErrNotFound) }

func describeStatus(s Status) string {
	if s.ErrorMsg != "" {
		return fmt.Sprintf("%s: %s", s.Health, s.ErrorMsg)
	}
	return string(s.Health)
}

// waitFor is the loop behind the Wait methods: watch key (spec and status)
// first, then read, and read again after every change until until holds.
func waitFor[T any](ctx context.Context, c *Cluster, key string, read func(context.Context) (T, error),
	until func(T, error) bool, describe func(T) string) (T, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, werr, err := c.Watch(wctx, key)
	if err != nil {
		var zero T
		return zero, err
	}
	for {
		v, err := read(ctx)
		if until(v, err) {
			return v, err
		}
		if ctx.Err() != nil {
			return v, waitError(ctx, v, err, describe)
		}
	changes:
		for {
			select {
			case ch, ok := <-changes:
				if !ok {
					if e := werr(); e != nil {
						return v, fmt.Errorf("vda: wait for %s: %w", key, e)
					}
					return v, waitError(ctx, v, err, describe)
				}
				if ch.Key == key { // not a longer name with the same prefix
					break changes
				}
			case <-ctx.Done():
				return v, waitError(ctx, v, err, describe)
			}
		}
	}
}

func waitError[T any](ctx context.Context, v T, err error, describe func(T) string) error {
	if err != nil {
		return fmt.Errorf("%w (last read: %v)", ctx.Err(), err)
	}
	return fmt.Errorf("%w (last seen: %s)", ctx.Err(), describe(v))
}
