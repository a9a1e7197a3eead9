// Package monitormetrics is the monitor's Prometheus metrics (a
// monitor.Metrics): pushes, health probes and misses, failovers, and the
// cluster gauges. Registries and serving are in package metrics.
package monitormetrics
