package realtier

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/multihost"
)

// obs is one observed state of a DA, as the portal reports it.
type obs struct {
	at             time.Time
	epoch          int64
	primary        int  // controller index, -1 if none or several
	primaryHealthy bool // the one primary is healthy
	settled        bool // everything healthy (see settled)
	health         string
	msg            string
	badDNs         string // disk nodes of the VDs that are not healthy
}

func (o obs) String() string {
	return fmt.Sprintf("%s epoch %d primary %d (healthy %v) settled %v health %q %s",
		o.at.Format("15:04:05.000"), o.epoch, o.primary, o.primaryHealthy, o.settled, o.health, o.msg)
}

// watcher polls a DA every 100 ms and keeps every change of its epoch,
// primary and health: the timeline failover times are read from. Failover
// counts come from the epoch, which the store only ever raises.
type watcher struct {
	mu   sync.Mutex
	obs  []obs
	stop context.CancelFunc
	done chan struct{}
}

// watch starts watching a until t ends.
func (c *cluster) watch(t *testing.T, a *array) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			da, err := c.daGet(qctx, a.name)
			qcancel()
			if err == nil {
				w.add(observe(da))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.close)
	return w
}

func observe(da *pb.DaMsg) obs {
	var bad []string
	for _, vd := range da.GetVdList() {
		if vd.GetHealth() != "healthy" || vd.GetError() {
			bad = append(bad, vd.GetDnName())
		}
	}
	return obs{at: time.Now(), epoch: da.GetEpoch(), primary: primaryOf(da), primaryHealthy: primaryHealthy(da),
		settled: settled(da, -1), health: da.GetStatus().GetHealth(), msg: da.GetStatus().GetErrorMsg(),
		badDNs: strings.Join(bad, ",")}
}

func (w *watcher) add(o obs) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.obs); n > 0 {
		p := w.obs[n-1]
		if p.epoch == o.epoch && p.primary == o.primary && p.primaryHealthy == o.primaryHealthy &&
			p.settled == o.settled && p.health == o.health && p.badDNs == o.badDNs {
			return
		}
	}
	w.obs = append(w.obs, o)
}

func (w *watcher) close() {
	w.stop()
	<-w.done
}

// timeline returns every change seen so far.
func (w *watcher) timeline() []obs {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]obs(nil), w.obs...)
}

// waitFor waits until a change at or after since satisfies ok, and
// returns it.
func (w *watcher) waitFor(t testing.TB, since time.Time, what string, ok func(obs) bool) obs {
	t.Helper()
	var found obs
	multihost.WaitFor(t, 3*time.Minute, 50*time.Millisecond, "never saw "+what, func() error {
		for _, o := range w.timeline() {
			if !o.at.Before(since) && ok(o) {
				found = o
				return nil
			}
		}
		return fmt.Errorf("timeline:\n%s", timelineString(w))
	})
	return found
}

func timelineString(w *watcher) string {
	s := ""
	for _, o := range w.timeline() {
		s += "  " + o.String() + "\n"
	}
	return s
}

// epoch reads a's epoch from the portal.
func (c *cluster) epoch(t testing.TB, ctx context.Context, a *array) int64 {
	t.Helper()
	da, err := c.daGet(ctx, a.name)
	require.NoError(t, err)
	return da.GetEpoch()
}
