package failover

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for name, c := range map[string]Config{
		"zero interval":    {Interval: 0, MissThreshold: 3, Window: time.Second},
		"single miss":      {Interval: time.Second, MissThreshold: 1, Window: time.Second},
		"window too short": {Interval: time.Second, MissThreshold: 3, Window: 1500 * time.Millisecond},
		"no slow timeout":  {Interval: time.Second, MissThreshold: 3, Window: 2 * time.Second},
		"slow timeout within the window": {Interval: time.Second, MissThreshold: 3, Window: 2 * time.Second,
			SlowTimeout: 2 * time.Second},
		"negative hold-down": {Interval: time.Second, MissThreshold: 3, Window: 2 * time.Second,
			SlowTimeout: 5 * time.Second, HoldDown: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Validate()
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = NewTracker(c)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestConfigValidateMessages(t *testing.T) {
	c := DefaultConfig()
	c.SlowTimeout = c.Window
	require.ErrorContains(t, c.Validate(), "slow timeout 1.5s must exceed the window 1.5s")
	c = DefaultConfig()
	c.HoldDown = -1
	require.ErrorContains(t, c.Validate(), "hold-down -1ns is negative")
	c.HoldDown = 0
	require.NoError(t, c.Validate(), "no hold-down is allowed")
}

type step struct {
	at   int // ms
	ok   bool
	slow bool // a miss that is Silent (weak) rather than Refused
	inst string
	want State
	rest bool
	why  string // on the step that fails the node: "refused" or "silent"
}

func TestTrackerTimelines(t *testing.T) {
	cfg := Config{Interval: 500 * time.Millisecond, MissThreshold: 3, Window: 2 * time.Second, SlowTimeout: 5 * time.Second}
	cases := map[string][]step{
		"one lost probe never fails": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 500, want: Suspect},
			{at: 1000, ok: true, inst: "a", want: Healthy},
			{at: 1500, want: Suspect},
			{at: 2000, ok: true, inst: "a", want: Healthy},
		},
		"three consecutive misses fail": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 500, want: Suspect},
			{at: 1000, want: Suspect},
			{at: 1500, want: Failed, why: "refused"},
			{at: 2000, want: Failed},
		},
		"misses spread beyond the window do not fail": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 1000, want: Suspect},
			{at: 2500, want: Suspect},
			{at: 4000, want: Suspect},                // the 1000 ms miss left the window
			{at: 4500, want: Suspect},                // 2500 is exactly 2 s old: the window is (at-2s, at]
			{at: 4600, want: Failed, why: "refused"}, // 4000, 4500, 4600 are within 2 s
		},
		"a good probe in between resets the count": {
			{at: 0, want: Suspect},
			{at: 500, want: Suspect},
			{at: 600, ok: true, inst: "a", want: Healthy},
			{at: 1000, want: Suspect},
			{at: 1500, want: Suspect},
			{at: 2000, want: Failed, why: "refused"},
		},
		"recovery and restart": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 500, want: Suspect},
			{at: 1000, want: Suspect},
			{at: 1500, want: Failed, why: "refused"},
			{at: 9000, ok: true, inst: "b", want: Healthy, rest: true},
			{at: 9500, ok: true, inst: "b", want: Healthy},
		},
		"never seen node fails too": {
			{at: 0, want: Suspect},
			{at: 500, want: Suspect},
			{at: 1000, want: Failed, why: "refused"},
		},
		"timeouts fail only after the slow timeout without a good probe": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 500, slow: true, want: Healthy}, // late is not dead
			{at: 1000, slow: true, want: Healthy},
			{at: 1500, slow: true, want: Healthy},
			{at: 2000, slow: true, want: Healthy},
			{at: 4999, slow: true, want: Healthy},
			{at: 5000, slow: true, want: Failed, why: "silent"},
			{at: 5500, slow: true, want: Failed},
			{at: 6000, ok: true, inst: "a", want: Healthy},
		},
		"a slow good probe resets the silence": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 500, slow: true, want: Healthy},
			{at: 1000, slow: true, want: Healthy},
			{at: 2500, ok: true, inst: "a", want: Healthy}, // answered after 2 s
			{at: 3000, slow: true, want: Healthy},
			{at: 7000, slow: true, want: Healthy},
			{at: 7499, slow: true, want: Healthy},
			{at: 7500, slow: true, want: Failed, why: "silent"},
		},
		"timeouts do not count toward the miss threshold": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 100, slow: true, want: Healthy},
			{at: 200, slow: true, want: Healthy},
			{at: 300, slow: true, want: Healthy},
			{at: 400, slow: true, want: Healthy},
		},
		"refusals among timeouts fail fast": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 500, slow: true, want: Healthy},
			{at: 1000, want: Suspect},
			{at: 1200, slow: true, want: Suspect}, // not evidence of life: the streak goes on
			{at: 1500, want: Suspect},
			{at: 1800, want: Failed, why: "refused"},
		},
		"a good probe ends a refusal streak, timeouts do not": {
			{at: 0, want: Suspect},
			{at: 100, want: Suspect},
			{at: 200, slow: true, want: Suspect},
			{at: 300, ok: true, inst: "a", want: Healthy},
			{at: 400, want: Suspect},
			{at: 500, want: Suspect},
			{at: 600, slow: true, want: Suspect},
			{at: 700, want: Failed, why: "refused"},
		},
		"refusals spread thinly still fail after the slow timeout": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 1000, want: Suspect},
			{at: 2500, slow: true, want: Suspect},
			{at: 5100, want: Failed, why: "silent"}, // one refusal in the window, but 5.1 s without an answer
		},
		"a node never heard from is failed on timeouts after the slow timeout": {
			{at: 0, slow: true, want: Suspect},
			{at: 4000, slow: true, want: Suspect},
			{at: 5000, slow: true, want: Failed, why: "silent"},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			tr, err := NewTracker(cfg)
			require.NoError(t, err)
			prev := Unknown
			for i, s := range steps {
				p := Probe{Node: "cn0", At: ms(s.at), OK: s.ok, Instance: s.inst}
				if s.slow {
					p.Miss = Silent
				}
				got := tr.Observe(p)
				require.Equal(t, s.want, got.To, "step %d at %d ms", i, s.at)
				if got.To == Failed && got.From != Failed {
					require.Equal(t, s.why, got.Cause.String(), "step %d: cause", i)
				} else {
					require.Empty(t, s.why, "step %d should have failed the node", i)
				}
				require.Equal(t, prev, got.From, "step %d", i)
				require.Equal(t, s.rest, got.Restarted, "step %d", i)
				require.Equal(t, s.want, tr.State("cn0"))
				prev = got.To
			}
		})
	}
}

func TestTrackerNodesAreIndependent(t *testing.T) {
	tr, err := NewTracker(DefaultConfig())
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		tr.Observe(Probe{Node: "cn1", At: ms(i * 400)})
		tr.Observe(Probe{Node: "cn0", At: ms(i * 400), OK: true, Instance: "x"})
	}
	require.Equal(t, []string{"cn1"}, tr.Failed())
	require.Equal(t, Healthy, tr.State("cn0"))
	require.Equal(t, Unknown, tr.State("cn9"))
	tr.Forget("cn1")
	require.Empty(t, tr.Failed())
}

// The default configuration detects a dead node within MissThreshold probes,
// which is what bounds failover time.
func TestDefaultDetectionTime(t *testing.T) {
	cfg := DefaultConfig()
	tr, err := NewTracker(cfg)
	require.NoError(t, err)
	tr.Observe(Probe{Node: "n", At: t0, OK: true})
	var failedAt time.Time
	for at := t0.Add(cfg.Interval); at.Before(t0.Add(10 * time.Second)); at = at.Add(cfg.Interval) {
		if tr.Observe(Probe{Node: "n", At: at}).To == Failed {
			failedAt = at
			break
		}
	}
	require.False(t, failedAt.IsZero())
	require.LessOrEqual(t, failedAt.Sub(t0), 2*time.Second)
}

// With the default configuration, a node whose probes only time out is
// failed once, at the first probe 5 s after its last good answer, and one whose answers take
// 2 s each (every other probe times out meanwhile) is never failed.
func TestDefaultSlowDetection(t *testing.T) {
	cfg := DefaultConfig()
	tr, err := NewTracker(cfg)
	require.NoError(t, err)
	tr.Observe(Probe{Node: "hung", At: t0, OK: true})
	tr.Observe(Probe{Node: "slow", At: t0, OK: true})
	var failedAt time.Time
	for at := t0.Add(cfg.Interval); at.Before(t0.Add(time.Minute)); at = at.Add(cfg.Interval) {
		if tr.Observe(Probe{Node: "hung", At: at, Miss: Silent}).Changed() {
			require.True(t, failedAt.IsZero(), "failed twice")
			failedAt = at
		}
		// An answer every 2 s, timeouts in between.
		slow := Probe{Node: "slow", At: at, Miss: Silent}
		if at.Sub(t0)%(2*time.Second) == 0 {
			slow.OK = true
		}
		require.Equal(t, Healthy, tr.Observe(slow).To, "at %v", at.Sub(t0))
	}
	require.Equal(t, 5200*time.Millisecond, failedAt.Sub(t0), "the first probe 5 s after the last answer")
	require.Equal(t, []string{"hung"}, tr.Failed())
}

// A node back from a failure is held down until it has been Healthy for
// HoldDown; a refusal meanwhile starts it over, a late answer does not, and
// so does failing again.
func TestTrackerHoldDown(t *testing.T) {
	cfg := Config{Interval: 100 * time.Millisecond, MissThreshold: 2, Window: 300 * time.Millisecond,
		SlowTimeout: time.Second, HoldDown: 2 * time.Second}
	tr, err := NewTracker(cfg)
	require.NoError(t, err)
	obs := func(at int, ok bool, miss Miss) State {
		return tr.Observe(Probe{Node: "cn0", At: ms(at), OK: ok, Miss: miss, Instance: "a"}).To
	}
	hold := func(at int) time.Duration { return tr.HoldDown("cn0", ms(at)) }

	require.Equal(t, Healthy, obs(0, true, 0))
	require.Zero(t, hold(0), "never failed")
	obs(100, false, Refused)
	require.Zero(t, hold(100), "suspect, but never failed")
	require.Equal(t, Failed, obs(200, false, Refused))
	require.Equal(t, 2*time.Second, hold(200))
	require.Equal(t, 2*time.Second, hold(5000), "failed: the hold-down has not started")

	require.Equal(t, Healthy, obs(1000, true, 0)) // back
	require.Equal(t, 2*time.Second, hold(1000))
	require.Equal(t, 1500*time.Millisecond, hold(1500))
	require.Equal(t, Healthy, obs(1600, false, Silent))
	require.Equal(t, 1300*time.Millisecond, hold(1700), "a late answer does not restart it")
	require.Equal(t, Suspect, obs(1800, false, Refused))
	require.Equal(t, 2*time.Second, hold(1900), "not healthy")
	require.Equal(t, Healthy, obs(2000, true, 0))
	require.Equal(t, 2*time.Second, hold(2000), "a refusal restarted it")
	require.Equal(t, time.Millisecond, hold(3999))
	require.Zero(t, hold(4000))
	require.Zero(t, hold(9000))

	// Served: a refusal later does not hold the node down again, a failure does.
	obs(9000, true, 0)
	require.Equal(t, Suspect, obs(9100, false, Refused))
	require.Equal(t, Healthy, obs(9200, true, 0))
	require.Zero(t, hold(9200))
	obs(9300, false, Refused)
	require.Equal(t, Failed, obs(9400, false, Refused))
	require.Equal(t, Healthy, obs(9500, true, 0))
	require.Equal(t, 2*time.Second, hold(9500))
	require.Zero(t, hold(11500))

	// No hold-down configured.
	cfg.HoldDown = 0
	tr, err = NewTracker(cfg)
	require.NoError(t, err)
	obs(0, false, Refused)
	obs(100, false, Refused)
	require.Zero(t, hold(100), "failed, but no hold-down")
	require.Equal(t, Healthy, obs(200, true, 0))
	require.Zero(t, hold(200))
	require.Zero(t, tr.HoldDown("cn9", ms(0)), "unknown node")
}

// Transitions say which evidence failed a node and how long it was silent.
func TestTransitionEvidence(t *testing.T) {
	tr, err := NewTracker(DefaultConfig())
	require.NoError(t, err)
	tr.Observe(Probe{Node: "a", At: ms(0), OK: true})
	tr.Observe(Probe{Node: "a", At: ms(400)})
	tr.Observe(Probe{Node: "a", At: ms(800)})
	got := tr.Observe(Probe{Node: "a", At: ms(1200)})
	require.Equal(t, Transition{Node: "a", From: Suspect, To: Failed, Cause: Refused, Silence: 1200 * time.Millisecond}, got)
	require.Equal(t, "refused", got.Cause.String())

	tr.Observe(Probe{Node: "b", At: ms(0), OK: true})
	got = tr.Observe(Probe{Node: "b", At: ms(5200), Miss: Silent})
	require.Equal(t, Transition{Node: "b", From: Healthy, To: Failed, Cause: Silent, Silence: 5200 * time.Millisecond}, got)
	require.Equal(t, "silent", got.Cause.String())
}

// FuzzTracker checks the tracker against a model on arbitrary sequences of
// good, refused and silent probes: a node becomes Failed exactly when it has
// MissThreshold refusals within the window since its last good probe, or no
// good probe for SlowTimeout; only a good probe ends a failure; and a node
// that failed is held down until it has been Healthy for HoldDown.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 1}, uint16(300))
	f.Add([]byte{0, 0, 0, 0}, uint16(1000))
	f.Add([]byte{1, 2, 2, 2, 2, 2, 2, 1, 0, 1, 1}, uint16(150))
	f.Fuzz(func(t *testing.T, seq []byte, gapMS uint16) {
		cfg := Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: 500 * time.Millisecond,
			SlowTimeout: 800 * time.Millisecond, HoldDown: 700 * time.Millisecond}
		tr, err := NewTracker(cfg)
		if err != nil {
			t.Fatal(err)
		}
		at := t0
		var refused []time.Time
		state, quiet := Unknown, at
		held, stable := false, at
		for i, b := range seq {
			at = at.Add(time.Duration(int(gapMS)%1000+int(b>>2)) * time.Millisecond)
			if i == 0 {
				quiet = at
			}
			p := Probe{Node: "n", At: at, OK: b%3 == 1}
			if b%3 == 2 {
				p.Miss = Silent
			}
			if held && state == Healthy && !at.Before(stable.Add(cfg.HoldDown)) {
				held = false
			}
			from := state
			silence := at.Sub(quiet)
			switch {
			case p.OK:
				refused, quiet = refused[:0], at
				if state != Healthy {
					stable = at
				}
				state = Healthy
			case p.Miss == Refused:
				refused = append(refused, at)
				inWindow := 0
				for _, m := range refused {
					if m.After(at.Add(-cfg.Window)) {
						inWindow++
					}
				}
				switch {
				case state == Failed:
				case inWindow >= cfg.MissThreshold || silence >= cfg.SlowTimeout:
					state = Failed
				default:
					state = Suspect
				}
			default:
				switch {
				case state == Failed:
				case silence >= cfg.SlowTimeout:
					state = Failed
				case state == Unknown:
					state = Suspect
				}
			}
			if state == Failed {
				held = true
			}
			got := tr.Observe(p)
			if got.From != from || got.To != state {
				t.Fatalf("step %d (%+v): %v -> %v, want %v -> %v", i, p, got.From, got.To, from, state)
			}
			if !p.OK && got.Silence != silence {
				t.Fatalf("step %d: silence %v, want %v", i, got.Silence, silence)
			}
			want := time.Duration(0)
			switch {
			case held && state != Healthy:
				want = cfg.HoldDown
			case held:
				want = max(0, stable.Add(cfg.HoldDown).Sub(at))
			}
			if got := tr.HoldDown("n", at); got != want {
				t.Fatalf("step %d: hold-down %v, want %v", i, got, want)
			}
		}
	})
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Unknown: "unknown", Healthy: "healthy", Suspect: "suspect", Failed: "failed"} {
		require.Equal(t, want, s.String())
	}
	require.True(t, errors.Is(Config{}.Validate(), ErrInvalidConfig))
}
