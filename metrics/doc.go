// Package metrics exports what VDA's processes do as Prometheus metrics
// and serves them over HTTP with liveness and readiness endpoints.
//
// Each process makes one registry (NewRegistry) and the collectors of
// its components over it, each from its own package so that a binary
// links only its role: portalmetrics.New (a portal.Metrics),
// monitormetrics.New (a monitor.Metrics, with the cluster gauges) and
// agentmetrics.New (an agent.Metrics). The components take them in their Config's Metrics
// field, so an embedder may pass its own registerer, or wrap it
// (prometheus.WrapRegistererWith) to run several agents in one process.
// Handler serves /metrics, /healthz (the process runs) and /readyz (ready
// reports nil). Names follow the Prometheus conventions: the vda_ prefix,
// base units in the name (_seconds, _bytes), _total on counters.
package metrics
