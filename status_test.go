package vda_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
)

// A controller's report of an older epoch says nothing of its role now:
// healthy parts reported before the array's current epoch read as
// degraded, and so does the array, until their nodes report again.
func TestStatusAtEpoch(t *testing.T) {
	st := vda.Status{Health: vda.HealthHealthy, Parts: map[string]vda.Status{
		"old":     {Health: vda.HealthHealthy, Epoch: 1},
		"current": {Health: vda.HealthHealthy, Epoch: 2},
		"vd":      {Health: vda.HealthHealthy},
		"failed":  {Health: vda.HealthFailed, ErrorMsg: "node failed", Epoch: 1},
	}}
	got := st.AtEpoch(2)
	require.Equal(t, vda.HealthDegraded, got.Health)
	require.Contains(t, got.ErrorMsg, "applying epoch 2")
	require.Equal(t, vda.HealthDegraded, got.Parts["old"].Health)
	require.Contains(t, got.Parts["old"].ErrorMsg, "last reported at epoch 1")
	require.Equal(t, vda.HealthHealthy, got.Parts["current"].Health)
	require.Equal(t, vda.HealthHealthy, got.Parts["vd"].Health, "parts without an epoch are not judged")
	require.Equal(t, st.Parts["failed"], got.Parts["failed"])
	require.Equal(t, vda.HealthHealthy, st.Parts["old"].Health, "the input is not changed")
	require.Equal(t, st, st.AtEpoch(1), "nothing stale at the epoch of the reports")
}
