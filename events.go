package vda

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// EventKind is the kind of object an Event is about.
type EventKind string

// Event kinds: the objects WatchEvents reports.
const (
	KindDN    EventKind = "dn"
	KindPD    EventKind = "pd"
	KindCN    EventKind = "cn"
	KindDA    EventKind = "da"
	KindExp   EventKind = "exp"
	KindSnap  EventKind = "snap"
	KindClone EventKind = "clone"
)

// EventKinds lists every EventKind.
func EventKinds() []EventKind {
	return []EventKind{KindDN, KindPD, KindCN, KindDA, KindExp, KindSnap, KindClone}
}

// EventType says what happened to the object.
type EventType string

// Event types.
const (
	// EventCreated: the object's record was written for the first time.
	EventCreated EventType = "created"
	// EventChanged: its record was rewritten (a modify, a count of its
	// children, the monitor marking a DA initialized).
	EventChanged EventType = "changed"
	// EventDeleted: its record was deleted.
	EventDeleted EventType = "deleted"
	// EventHealth: the monitor's report on it changed: Health (at the
	// DA's epoch, as GetDiskArray shows it), Message, or how many of its
	// parts are healthy, or, on a DA or clone, Status.AppliedSizeBytes or
	// Status.Inflated (a resize or inflate applied: Health may stay).
	EventHealth EventType = "health"
	// EventFailover: a DA's primary moved because the monitor failed it
	// over (Move says from where to where).
	EventFailover EventType = "failover"
	// EventSwitchover: a DA's primary moved by SwitchoverDiskArray.
	EventSwitchover EventType = "switchover"
)

// Event is one change of a cluster object seen by WatchEvents.
type Event struct {
	// Revision is the store revision of the change; a watch resumed from
	// Revision+1 continues after it.
	Revision int64
	Kind     EventKind
	Type     EventType
	// Name is the object's name; Parent names the DN of a PD, or the DA
	// of an exporter, snapshot or clone ("" for the others).
	Name   string
	Parent string
	// Health is the object's health after the change, as far as the
	// watch knows it (HealthUnknown before the monitor reported);
	// PrevHealth, on EventHealth, is what it was before (HealthUnknown
	// if the watch did not know).
	Health     Health
	PrevHealth Health
	// Message is the monitor's error message on EventHealth ("" if none).
	Message string
	// HealthyParts of Parts are healthy, on EventHealth of an object with
	// parts: a DA's VDs and controllers, an exporter's controllers.
	HealthyParts, Parts int
	// Move is where a DA's primary went, on EventFailover and
	// EventSwitchover.
	Move *PrimaryMove
	// AppliedSizeBytes, on EventHealth of a DA or clone, is the size its
	// primary reported the volume at (Status.AppliedSizeBytes; 0 before
	// any report): a resize shows as a health event whose Health may not
	// change but whose AppliedSizeBytes does. Inflated is a clone's
	// Status.Inflated.
	AppliedSizeBytes uint64
	Inflated         bool
}

// PrimaryMove is a DA's primary moving from one controller to another.
type PrimaryMove struct {
	FromCntlrIdx int
	FromCN       string
	ToCntlrIdx   int
	ToCN         string
	// Epoch is the DA's epoch after the move.
	Epoch int64
}

// WatchOptions selects the events of WatchEvents.
type WatchOptions struct {
	// FromRevision replays every change from that store revision on; 0
	// starts now. A revision the store compacted away is refused.
	FromRevision int64
	// Kinds keeps only these kinds (none: every kind).
	Kinds []EventKind
	// DAName keeps only the events of that disk array and of its
	// exporters, snapshots and clones ("": every object).
	DAName string
	// Buffer is how many events may wait for the consumer (0:
	// DefaultEventBuffer); a consumer further behind is cut off with
	// ErrWatchLagged.
	Buffer int
}

// Limits of WatchOptions.Buffer.
const (
	DefaultEventBuffer = 1024
	MaxEventBuffer     = 1 << 16
)

// ErrWatchLagged ends an event stream whose consumer fell Buffer events
// behind (it also wraps ErrResourceExhausted). Its message says the
// revision to resume from.
var ErrWatchLagged = errors.New("vda: event consumer fell behind")

// EventStream is a running WatchEvents.
type EventStream struct {
	start  int64
	ch     chan Event
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// Start is the first revision the stream reports: FromRevision, or the
// revision after the one the watch started at.
func (s *EventStream) Start() int64 { return s.start }

// Events delivers the events in revision order; it is closed when the
// watch ends (see Err).
func (s *EventStream) Events() <-chan Event { return s.ch }

// Err waits for the stream to end and says why: nil when its context
// ended or Close was called, ErrWatchLagged (with the revision to resume
// from), store.ErrCompacted (wrapping ErrFailedPrecondition: watch from
// now and read the objects again) or a store error.
func (s *EventStream) Err() error {
	<-s.done
	return s.err
}

// Close stops the stream and waits for it to end; it is idempotent.
func (s *EventStream) Close() {
	s.cancel()
	<-s.done
}

// WatchEvents streams the changes of the cluster's DNs, PDs, CNs, DAs,
// exporters, snapshots and clones: records created, changed and deleted,
// the monitor's health reports as transitions, and a DA's primary moving
// (failover or switchover), each with its store revision.
//
// It works on every store backend (it is built on store.Store.Watch). A
// watch from now first reads every object once, so that its first health
// report or primary move is a transition from a known state; a watch
// resumed from a revision learns each object at its first change after
// it, and that change reports no previous health. Memory per stream is
// the Buffer of events plus a few words per object it follows (its
// health, a DA's primary and controllers); a consumer that falls Buffer
// events behind is cut off (ErrWatchLagged) and never slows the store or
// other streams.
func (c *Cluster) WatchEvents(ctx context.Context, opt WatchOptions) (*EventStream, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	d := newDecoder(opt)
	ctx, cancel := context.WithCancel(ctx)
	start, err := c.startEvents(ctx, opt, d)
	if err != nil {
		cancel()
		return nil, err
	}
	w, err := c.s.Watch(ctx, Prefix, start)
	if err != nil {
		cancel()
		return nil, compacted(err, start)
	}
	s := &EventStream{start: start, ch: make(chan Event, opt.buffer()), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		defer close(s.ch)
		defer cancel()
		defer func() { _ = w.Close() }()
		s.err = s.pump(ctx, w, d, start)
	}()
	return s, nil
}

// startEvents returns the revision the watch starts at; from now, it reads
// every object first so that transitions have a known start.
func (c *Cluster) startEvents(ctx context.Context, opt WatchOptions, d *decoder) (int64, error) {
	rev, err := c.s.Revision(ctx)
	if err != nil {
		return 0, err
	}
	if opt.FromRevision > rev+1 {
		return 0, fmt.Errorf("%w: revision %d is in the future (the store is at revision %d)", ErrInvalidArgument, opt.FromRevision, rev)
	}
	if opt.FromRevision > 0 {
		return opt.FromRevision, nil
	}
	res, err := c.s.List(ctx, Prefix, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	for _, kv := range res.KVs {
		d.prime(kv)
	}
	return res.Revision + 1, nil
}

// pump moves the store's changes to s.ch, one revision at a time, until
// ctx ends or the watch fails; a revision that does not fit in what is
// left of the buffer ends the stream (ErrWatchLagged).
func (s *EventStream) pump(ctx context.Context, w store.Watcher, d *decoder, start int64) error {
	var batch []Event
	for {
		var resp store.WatchResponse
		var ok bool
		select {
		case resp, ok = <-w.Events():
		case <-ctx.Done():
			return nil
		}
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("vda: event watch ended: %w", store.ErrClosed)
		}
		if resp.Err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return compacted(resp.Err, start)
		}
		for i := 0; i < len(resp.Events); {
			rev := resp.Events[i].KV.ModRevision
			batch = batch[:0]
			for ; i < len(resp.Events) && resp.Events[i].KV.ModRevision == rev; i++ {
				batch = append(batch, d.decode(resp.Events[i])...)
			}
			if free := cap(s.ch) - len(s.ch); len(batch) > free {
				return fmt.Errorf("%w: %w: %d events were waiting for the consumer; resume from revision %d",
					ErrResourceExhausted, ErrWatchLagged, len(s.ch), rev)
			}
			for _, ev := range batch {
				s.ch <- ev // room checked above: only this goroutine sends
			}
		}
	}
}

// compacted explains store.ErrCompacted; other errors pass unchanged.
func compacted(err error, from int64) error {
	if !errors.Is(err, store.ErrCompacted) {
		return err
	}
	return fmt.Errorf("%w: %w: the store no longer keeps the changes from revision %d; "+
		"watch from now (revision 0) and read the objects again", ErrFailedPrecondition, err, from)
}

func (o WatchOptions) buffer() int {
	if o.Buffer == 0 {
		return DefaultEventBuffer
	}
	return o.Buffer
}

func (o WatchOptions) validate() error {
	if o.FromRevision < 0 {
		return fmt.Errorf("%w: from revision %d is negative (0 means now)", ErrInvalidArgument, o.FromRevision)
	}
	if o.Buffer < 0 || o.Buffer > MaxEventBuffer {
		return fmt.Errorf("%w: event buffer %d is not in 0..%d", ErrInvalidArgument, o.Buffer, MaxEventBuffer)
	}
	all := EventKinds()
	for i, k := range o.Kinds {
		if !slices.Contains(all, k) {
			return fmt.Errorf("%w: event kind %q is none of %v", ErrInvalidArgument, k, all)
		}
		if slices.Contains(o.Kinds[:i], k) {
			return fmt.Errorf("%w: event kind %q given twice", ErrInvalidArgument, k)
		}
	}
	if o.DAName != "" {
		return ValidateName(nvmeof.ResourceDA, o.DAName)
	}
	return nil
}
