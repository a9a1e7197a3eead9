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
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Validate()
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = NewTracker(c)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

type step struct {
	at   int // ms
	ok   bool
	inst string
	want State
	rest bool
}

func TestTrackerTimelines(t *testing.T) {
	cfg := Config{Interval: 500 * time.Millisecond, MissThreshold: 3, Window: 2 * time.Second}
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
			{at: 1500, want: Failed},
			{at: 2000, want: Failed},
		},
		"misses spread beyond the window do not fail": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 1000, want: Suspect},
			{at: 2500, want: Suspect},
			{at: 4000, want: Suspect}, // the 1000 ms miss left the window
			{at: 4500, want: Suspect}, // 2500 is exactly 2 s old: the window is (at-2s, at]
			{at: 4600, want: Failed},  // 4000, 4500, 4600 are within 2 s
		},
		"a good probe in between resets the count": {
			{at: 0, want: Suspect},
			{at: 500, want: Suspect},
			{at: 600, ok: true, inst: "a", want: Healthy},
			{at: 1000, want: Suspect},
			{at: 1500, want: Suspect},
			{at: 2000, want: Failed},
		},
		"recovery and restart": {
			{at: 0, ok: true, inst: "a", want: Healthy},
			{at: 500, want: Suspect},
			{at: 1000, want: Suspect},
			{at: 1500, want: Failed},
			{at: 9000, ok: true, inst: "b", want: Healthy, rest: true},
			{at: 9500, ok: true, inst: "b", want: Healthy},
		},
		"never seen node fails too": {
			{at: 0, want: Suspect},
			{at: 500, want: Suspect},
			{at: 1000, want: Failed},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			tr, err := NewTracker(cfg)
			require.NoError(t, err)
			prev := Unknown
			for i, s := range steps {
				got := tr.Observe(Probe{Node: "cn0", At: ms(s.at), OK: s.ok, Instance: s.inst})
				require.Equal(t, s.want, got.To, "step %d at %d ms", i, s.at)
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

// FuzzTracker checks the tracker's invariants on arbitrary probe sequences:
// a node is Failed only after MissThreshold consecutive misses within the
// window, and any good probe makes it Healthy.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 1}, uint16(300))
	f.Add([]byte{0, 0, 0, 0}, uint16(1000))
	f.Fuzz(func(t *testing.T, seq []byte, gapMS uint16) {
		cfg := Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: 500 * time.Millisecond}
		tr, err := NewTracker(cfg)
		if err != nil {
			t.Fatal(err)
		}
		at := t0
		var misses []time.Time
		for i, b := range seq {
			at = at.Add(time.Duration(int(gapMS)%1000+int(b>>1)) * time.Millisecond)
			ok := b&1 == 1
			got := tr.Observe(Probe{Node: "n", At: at, OK: ok})
			if ok {
				misses = misses[:0]
				if got.To != Healthy {
					t.Fatalf("step %d: good probe gave %v", i, got.To)
				}
				continue
			}
			misses = append(misses, at)
			inWindow := 0
			for _, m := range misses {
				if m.After(at.Add(-cfg.Window)) {
					inWindow++
				}
			}
			if got.To == Failed && got.From != Failed && inWindow < cfg.MissThreshold {
				t.Fatalf("step %d: failed with only %d misses in window", i, inWindow)
			}
			if got.To != Failed && inWindow >= cfg.MissThreshold {
				t.Fatalf("step %d: %d misses in window but state %v", i, inWindow, got.To)
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
