package monitor

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
)

// An edit that carries its parts as data (partEdit, merged by groupEdits)
// tells whether it changes a status (unchanged) and whether it is what a
// status holds (is) exactly as applying it to a copy does: a write-back
// that skipped an edit that changes something would lose a status change.
func TestPartEditsAgreeWithApplying(t *testing.T) {
	healthy := vda.Status{Health: vda.HealthHealthy}
	atEpoch2 := vda.Status{Health: vda.HealthHealthy, Epoch: 2}
	degraded := vda.Status{Health: vda.HealthDegraded, ErrorMsg: "not ready"}
	statuses := []vda.Status{
		{},
		{Health: vda.HealthHealthy},
		{Parts: map[string]vda.Status{"a": healthy}},
		{Parts: map[string]vda.Status{"a": atEpoch2}},
		{Parts: map[string]vda.Status{"a": degraded}},
		{Parts: map[string]vda.Status{"a": healthy, "b": healthy}},
		{Health: vda.HealthHealthy, Parts: map[string]vda.Status{"a": healthy, "b": degraded}},
		{Parts: map[string]vda.Status{"a": healthy}, AppliedSizeBytes: 1 << 20},
		{Parts: map[string]vda.Status{"a": healthy}, AppliedSizeBytes: 2 << 20},
		{Parts: map[string]vda.Status{"a": healthy}, Epoch: 2},
	}
	one := func(id string, st vda.Status, size uint64) statusEdit {
		e := partEdit("k", 1, id, st)
		e.size = size
		return e
	}
	edits := []statusEdit{
		one("a", healthy, 0),
		one("a", atEpoch2, 0),
		one("a", degraded, 0),
		one("b", healthy, 0),
		one("a", healthy, 1<<20),
		merge(one("a", healthy, 0), one("b", healthy, 0)),
		merge(one("a", healthy, 0), one("b", degraded, 0)),
		merge(one("a", degraded, 0), one("a", healthy, 0)), // the later wins
		merge(one("a", healthy, 1<<20), one("b", healthy, 0)),
		merge(one("a", healthy, 0), statusEdit{specKey: "k", guard: 1, edit: setPart("b", healthy)}),
	}
	for i, e := range edits {
		for j, st := range statuses {
			name := fmt.Sprintf("edit %d on status %d", i, j)
			next := cloneStatus(st)
			e.apply(&next)
			require.Equal(t, sameStatus(st, next), e.unchanged(st), "unchanged: %s", name)
			var alone vda.Status
			e.apply(&alone)
			require.Equal(t, sameStatus(st, alone), e.is(st), "is: %s", name)
			slow := statusEdit{specKey: "k", guard: 1, edit: func(s *vda.Status) { e.apply(s) }}
			require.Equal(t, slow.unchanged(st), e.unchanged(st), "closure: %s", name)
		}
	}
}

// A report's part edits share one array (partArena); merging two of them
// (groupEdits, of one key) never writes into a third edit's part.
func TestPartArenaEditsStayApart(t *testing.T) {
	healthy := vda.Status{Health: vda.HealthHealthy}
	degraded := vda.Status{Health: vda.HealthDegraded, ErrorMsg: "not ready"}
	arena := make(partArena, 0, 3) // as reportEdits sizes it
	a := arena.edit("k1", 1, "a", healthy)
	b := arena.edit("k2", 1, "b", degraded)
	c := arena.edit("k1", 1, "c", healthy)
	got := groupEdits([]statusEdit{a, b, c})
	require.Len(t, got, 2)
	require.Equal(t, []part{{"a", healthy}, {"c", healthy}}, got[0].parts)
	require.Equal(t, []part{{"b", degraded}}, got[1].parts, "k2's part is its own")
	require.Equal(t, []part{{"b", degraded}}, b.parts)
}
