package failover

import (
	"context"
	"time"
)

// Clock is the engine's source of time: when probes are sent, how long one
// may take, and when a held-down array is decided again. Tests inject a
// fake one to drive exact timelines; nil in [EngineConfig] means the
// system clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a [Clock]'s one-shot timer, like time.Timer.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
	// Reset makes the timer fire after d (again).
	Reset(d time.Duration) bool
}

// SystemClock returns the clock of the time package.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time        { return t.t.C }
func (t systemTimer) Stop() bool                 { return t.t.Stop() }
func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// withTimeout returns a context cancelled after d on clock c, and a func
// that reports whether that timeout (not the parent, not cancel) ended it.
// On the system clock it is context.WithTimeout, so a remote callee sees
// the deadline; on another clock a timer of that clock cancels it.
func withTimeout(parent context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc, func() bool) {
	if _, ok := c.(systemClock); ok {
		ctx, cancel := context.WithTimeout(parent, d)
		return ctx, cancel, func() bool { return parent.Err() == nil && context.Cause(ctx) == context.DeadlineExceeded }
	}
	ctx, cancel := context.WithCancel(parent)
	fired := make(chan struct{})
	t := c.NewTimer(d)
	go func() {
		defer t.Stop()
		select {
		case <-t.C():
			close(fired) // before cancel: whoever sees ctx end sees fired
			cancel()
		case <-ctx.Done():
		}
	}()
	timedOut := func() bool {
		select {
		case <-fired:
			return true
		default:
			return false
		}
	}
	return ctx, cancel, timedOut
}
