package agent

import (
	"context"
	"fmt"
	"time"
)

// observeSPDK is the agent's SPDK client's observer: it counts the calls
// (for the RPCs per Sync) and reports them to Metrics.
func (a *Agent) observeSPDK(method string, d time.Duration, err error) {
	a.spdkCalls.Add(1)
	if a.cfg.Metrics != nil {
		a.cfg.Metrics.SPDKCall(method, d, err)
	}
}

// Ready reports whether the agent can serve: its SPDK answers
// spdk_get_version (on the health connection, within the health timeout).
func (a *Agent) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.HealthTimeout)
	defer cancel()
	if _, err := a.health.SpdkGetVersion(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}
