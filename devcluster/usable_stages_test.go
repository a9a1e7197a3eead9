package devcluster_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
)

// The steps that make a DA usable, in the order they happen (stages).
const (
	stepVDs         = iota // every VD part of the DA's status healthy
	stepPrimary            // the primary controller's part healthy
	stepInitialized        // the DA marked initialized
	stepPrimaryPort        // the exporter's port on the primary healthy
	stepUsable             // the exporter healthy (every port)
	stepCount
)

var stepNames = [stepCount]string{"vds", "primary", "initialized", "primary-port", "usable"}

// stages records, with VDA_USABLE_STAGES=1, when each step of each DA was
// first seen in the store, to show where create to usable's time goes. It
// reads every DA and exporter on each change, so it adds store reads of
// its own: compare its runs with each other, not with runs without it.
type stages struct {
	mu sync.Mutex
	at map[string]*stageRecord // by DA name
}

type stageRecord struct {
	issued     time.Time
	primaryIdx int // -1: not known yet
	step       [stepCount]time.Time
}

// newStages returns nil (every method a no-op) unless VDA_USABLE_STAGES is set.
func newStages() *stages {
	if os.Getenv("VDA_USABLE_STAGES") == "" {
		return nil
	}
	return &stages{at: map[string]*stageRecord{}}
}

// watch reads each DA and exporter on its changes until ctx ends.
func (s *stages) watch(ctx context.Context, tb testing.TB, api *vda.Cluster) {
	if s == nil {
		return
	}
	for _, prefix := range []string{vda.PrefixDA, vda.PrefixExp} {
		changes, _, err := api.Watch(ctx, prefix)
		require.NoError(tb, err)
		go func() {
			for ch := range changes {
				if ch.Deleted {
					continue
				}
				name := strings.TrimPrefix(ch.Key, prefix)
				go func() {
					if prefix == vda.PrefixDA {
						if da, err := api.GetDiskArray(ctx, name); err == nil {
							s.sawDA(da, time.Now())
						}
						return
					}
					da, exp, _ := strings.Cut(name, "/")
					if x, err := api.GetExporter(ctx, da, exp); err == nil {
						s.sawExporter(x, time.Now())
					}
				}()
			}
		}()
	}
}

// issued starts a DA's record at the time its create was due.
func (s *stages) issued(name string, due time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at[name] = &stageRecord{issued: due, primaryIdx: -1}
}

func (s *stages) sawDA(da vda.DiskArray, now time.Time) {
	vds := len(da.VDs) > 0
	for _, vd := range da.VDs {
		vds = vds && da.Status.Parts[vd.ID].Health == vda.HealthHealthy
	}
	p, ok := da.Primary()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.at[da.Name]
	if r == nil {
		return
	}
	if ok {
		r.primaryIdx = p.Idx
	}
	r.mark(stepVDs, vds, now)
	r.mark(stepPrimary, ok && da.Status.Parts[p.ID].Health == vda.HealthHealthy, now)
	r.mark(stepInitialized, da.Initialized, now)
}

func (s *stages) sawExporter(x vda.Exporter, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.at[x.DAName]
	if r == nil {
		return
	}
	for _, port := range x.Ports {
		r.mark(stepPrimaryPort, port.CntlrIdx == r.primaryIdx && x.Status.Parts[port.ID].Health == vda.HealthHealthy, now)
	}
	r.mark(stepUsable, x.Status.Health == vda.HealthHealthy, now)
}

// mark records step at now if seen and not recorded before.
func (r *stageRecord) mark(step int, seen bool, now time.Time) {
	if seen && r.step[step].IsZero() {
		r.step[step] = now
	}
}

// print writes, for each step, the p50 and p99 of the time from the step
// before it (the create's due time for the first) to it, over the DAs
// whose every step was seen in order.
func (s *stages) print(b testing.TB) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var gaps [stepCount][]time.Duration
	complete := 0
	for _, r := range s.at {
		prev, ok := r.issued, true
		for _, t := range r.step {
			ok = ok && !t.IsZero() && !t.Before(prev)
			prev = t
		}
		if !ok {
			continue
		}
		complete++
		prev = r.issued
		for i, t := range r.step {
			gaps[i] = append(gaps[i], t.Sub(prev))
			prev = t
		}
	}
	var out strings.Builder
	for i, g := range gaps {
		if len(g) == 0 {
			continue
		}
		slices.Sort(g)
		pct := func(p int) float64 { return g[(len(g)-1)*p/100].Seconds() * 1000 }
		fmt.Fprintf(&out, "\nto %-14s p50 %6.0f ms  p90 %6.0f ms  p99 %6.0f ms", stepNames[i], pct(50), pct(90), pct(99))
	}
	fmt.Fprintf(os.Stderr, "%s: steps of %d of %d DAs seen in order, each from the one before%s\n",
		b.Name(), complete, len(s.at), out.String())
}
