// Package portalmetrics is the portal's Prometheus metrics (a
// portal.Metrics): requests by method and status code, and their latency.
// Registries and serving are in package metrics.
package portalmetrics
