package nvmeof

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseANAState(t *testing.T) {
	tests := []struct {
		in   string
		want ANAState
	}{
		{"optimized", Optimized},
		{"OPTIMIZED", Optimized},
		{"non_optimized", NonOptimized},
		{"Non_Optimized", NonOptimized},
		{"inaccessible", Inaccessible},
		{"InAccessible", Inaccessible},
	}
	for _, tc := range tests {
		got, err := ParseANAState(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
		assert.NoError(t, got.Validate())
	}
	// SPDK's spellings, exactly.
	assert.Equal(t, "optimized", Optimized.String())
	assert.Equal(t, "non_optimized", NonOptimized.String())
	assert.Equal(t, "inaccessible", Inaccessible.String())

	for _, bad := range []string{"", "non-optimized", "nonoptimized", "persistent_loss", "change", " optimized"} {
		got, err := ParseANAState(bad)
		assert.ErrorIs(t, err, ErrInvalidANAState, "%q", bad)
		assert.Empty(t, got)
		assert.ErrorIs(t, ANAState(bad).Validate(), ErrInvalidANAState)
	}
	assert.ErrorIs(t, ANAState("Optimized").Validate(), ErrInvalidANAState, "Validate wants the lower-case spelling")
}
