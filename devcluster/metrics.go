package devcluster

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda/metrics/agentmetrics"
	"github.com/vda-io/vda/metrics/monitormetrics"
	"github.com/vda-io/vda/metrics/portalmetrics"
	"github.com/vda-io/vda/metrics/storemetrics"
)

// newMetrics registers the components' metrics on Config.Metrics.
func (c *Cluster) newMetrics() error {
	reg := c.cfg.Metrics
	if reg == nil {
		return nil
	}
	var err error
	if c.portalMetrics, err = portalmetrics.New(reg); err != nil {
		return err
	}
	if c.monitorMetrics, err = monitormetrics.New(reg); err != nil {
		return err
	}
	if c.storeMetrics, err = storemetrics.New(reg); err != nil {
		return err
	}
	for _, n := range c.nodes {
		if n.metrics, err = agentmetrics.New(prometheus.WrapRegistererWith(prometheus.Labels{"node": n.ShortName()}, reg)); err != nil {
			return err
		}
	}
	return nil
}

// ReadyCheck reports whether the cluster serves: it is ready (Ready), its
// monitor is a live member that completed a round, and its store answers.
// It is the readiness check of vda-dev's metrics endpoint.
func (c *Cluster) ReadyCheck(ctx context.Context) error {
	select {
	case <-c.ready:
	default:
		return errors.New("devcluster: starting")
	}
	c.mu.Lock()
	mon, st := c.mon, c.st
	c.mu.Unlock()
	if mon == nil || st == nil {
		return errors.New("devcluster: stopped")
	}
	if err := mon.Ready(); err != nil {
		return err
	}
	_, err := st.Revision(ctx)
	return err
}
