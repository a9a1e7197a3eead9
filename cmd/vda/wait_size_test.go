package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/portal"
)

// running reports whether a started command has not ended yet.
func (s *started) running() bool {
	select {
	case code := <-s.code:
		s.code <- code
		return false
	default:
		return true
	}
}

// da modify --da-size --wait does not return while the array is healthy
// but its primary has not reported the grown volume (status applied_size),
// and returns once it has; clone modify --size --inflate --wait likewise
// waits for the clone's lvol size and its inflation.
func TestWaitForAppliedSize(t *testing.T) {
	addr, _, st := startPortalStore(t, portal.Config{})
	for _, line := range tutorial.Lines()[:8] { // da0 and exp0
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	const small, grown = 33554432, 37748736
	setStatus(t, st, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, AppliedSizeBytes: small})
	w := start("--addr-port", addr, "da", "modify", "--da-name", "da0", "--da-size", "37748736", "--wait=1m")
	eventually(t, func() bool {
		return strings.Contains(w.err.String(),
			"waiting for disk array da0 to be healthy at 37748736 bytes: healthy, volume at 33554432 of 37748736 bytes\n")
	}, w.err.String)
	require.True(t, w.running(), "healthy, but the volume is not grown yet: %s", w.out.String())
	// Grown but not healthy (a controller applying a new epoch) is not enough either.
	setStatus(t, st, vda.KeyDA("da0"), vda.Status{Health: vda.HealthDegraded, ErrorMsg: "controller 1: connecting", AppliedSizeBytes: grown})
	eventually(t, func() bool {
		return strings.Contains(w.err.String(), "to be healthy at 37748736 bytes: degraded: controller 1: connecting")
	}, w.err.String)
	require.True(t, w.running())
	setStatus(t, st, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, AppliedSizeBytes: grown})
	require.Zero(t, w.wait(t), w.err.String())
	require.Contains(t, w.out.String(), `"applied_size": "37748736"`)

	for _, args := range [][]string{
		{"snap", "create", "--da-name", "da0", "--snap-name", "s0"},
		{"clone", "create", "--da-name", "da0", "--snap-name", "s0", "--clone-name", "c0"},
	} {
		_, errOut, code := runCLI(t, append([]string{"--addr-port", addr}, args...)...)
		require.Zero(t, code, errOut)
	}
	w = start("--addr-port", addr, "clone", "modify", "--da-name", "da0", "--clone-name", "c0", "--inflate", "--size", "37748736", "--wait=1m")
	eventually(t, func() bool {
		return strings.Contains(w.err.String(), "waiting for clone c0 of disk array da0 to be ready at 37748736 bytes and inflated: unknown")
	}, w.err.String)
	setStatus(t, st, vda.KeyClone("da0", "c0"), vda.Status{Health: vda.HealthHealthy, AppliedSizeBytes: small, Inflated: true})
	eventually(t, func() bool {
		return strings.Contains(w.err.String(), "ready at 37748736 bytes and inflated: healthy, lvol at 33554432 of 37748736 bytes\n")
	}, w.err.String)
	require.True(t, w.running(), "ready, but the lvol is not grown yet: %s", w.out.String())
	setStatus(t, st, vda.KeyClone("da0", "c0"), vda.Status{Health: vda.HealthHealthy, AppliedSizeBytes: grown, Inflated: true})
	require.Zero(t, w.wait(t), w.err.String())
	require.Contains(t, w.out.String(), `"applied_size": "37748736"`)
	require.Contains(t, w.out.String(), `"inflated": true`)
}
