package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"

	"github.com/vda-io/vda/internal/atomicfile"
)

// stateFile is the name of the guard's file in Config.StateDir.
const stateFile = "agent-state.json"

// stateVersion is the format version of the state file.
const stateVersion = 1

// persisted is the content of the state file.
type persisted struct {
	Version    int              `json:"version"`
	Generation int64            `json:"generation"`
	Epochs     map[string]int64 `json:"epochs"`
}

// guard remembers the last applied generation and the epoch of every disk
// array in it, and refuses older ones (invariant 1: one writer per DA). With
// a path it keeps them in a file, replaced atomically, so that a restarted
// agent still refuses a stale monitor.
type guard struct {
	path string // "" when not persisted

	mu      sync.Mutex
	gen     int64
	epochs  map[string]int64
	applied int64 // last generation applied since start, for Health
}

// loadGuard returns a guard persisted in dir ("" for memory only), loaded
// from its file if there is one. A file that cannot be read is an error:
// forgetting it could let a stale monitor undo a fence.
func loadGuard(dir string) (*guard, error) {
	g := &guard{epochs: map[string]int64{}}
	if dir == "" {
		return g, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	g.path = filepath.Join(dir, stateFile)
	b, err := os.ReadFile(g.path)
	if errors.Is(err, fs.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, g.path, err)
	}
	if p.Version != stateVersion || p.Generation < 0 {
		return nil, fmt.Errorf("%w: %s: unsupported version %d or generation %d", ErrState, g.path, p.Version, p.Generation)
	}
	g.gen = p.Generation
	if p.Epochs != nil {
		g.epochs = p.Epochs
	}
	return g, nil
}

// check refuses gen and epochs older than the last applied ones.
func (g *guard) check(gen int64, epochs map[string]int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gen < g.gen {
		return fmt.Errorf("%w: generation %d is older than the applied generation %d", ErrStale, gen, g.gen)
	}
	for da, e := range epochs {
		if last, ok := g.epochs[da]; ok && e < last {
			return fmt.Errorf("%w: epoch %d of disk array %s is older than the applied epoch %d", ErrStale, e, da, last)
		}
	}
	return nil
}

// accept records gen and epochs as applied: the epochs of disk arrays the
// new state no longer names are forgotten (a later state naming them again
// has a newer generation). It persists before the caller touches SPDK, so a
// crash mid-Sync never lets an older state through afterwards.
func (g *guard) accept(gen int64, epochs map[string]int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gen != g.gen || !maps.Equal(epochs, g.epochs) {
		if err := g.writeLocked(gen, epochs); err != nil {
			return err
		}
		g.gen, g.epochs = gen, maps.Clone(epochs)
	}
	g.applied = gen
	return nil
}

// held returns the generation and the highest epoch the guard holds.
func (g *guard) held() (gen, maxEpoch int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen, maxOf(g.epochs)
}

func maxOf(epochs map[string]int64) int64 {
	var m int64
	for _, e := range epochs {
		m = max(m, e)
	}
	return m
}

// reanchor replaces the guard's generation and epochs with gen and epochs
// (values read from the store at storeRev), only if the guard holds a
// generation or an epoch above storeRev (which no monitor can have issued)
// and still holds what the caller saw (expectGen, expectMaxEpoch). It
// returns the values it replaced.
func (g *guard) reanchor(expectGen, expectMaxEpoch, storeRev, gen int64, epochs map[string]int64) (prevGen, prevMax int64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	prevGen, prevMax = g.gen, maxOf(g.epochs)
	if prevGen != expectGen || prevMax != expectMaxEpoch {
		return prevGen, prevMax, fmt.Errorf("%w: the guard holds generation %d and epoch %d, not the expected %d and %d",
			ErrStale, prevGen, prevMax, expectGen, expectMaxEpoch)
	}
	if prevGen <= storeRev && prevMax <= storeRev {
		return prevGen, prevMax, fmt.Errorf("%w: the guard (generation %d, epoch %d) is within store revision %d: nothing to re-anchor",
			ErrStale, prevGen, prevMax, storeRev)
	}
	if err := g.writeLocked(gen, epochs); err != nil {
		return prevGen, prevMax, err
	}
	g.gen, g.epochs = gen, maps.Clone(epochs)
	return prevGen, prevMax, nil
}

// lastApplied is the generation last applied since the agent started (0
// when none).
func (g *guard) lastApplied() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.applied
}

// writeLocked replaces the state file with gen and epochs.
func (g *guard) writeLocked(gen int64, epochs map[string]int64) error {
	if g.path == "" {
		return nil
	}
	b, err := json.Marshal(persisted{Version: stateVersion, Generation: gen, Epochs: epochs})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return writeAtomic(g.path, b)
}

// writeAtomic replaces path with data (0600), durably (atomicfile.Write).
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}
