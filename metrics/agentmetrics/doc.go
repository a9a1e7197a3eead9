// Package agentmetrics is the node agent's Prometheus metrics (an
// agent.Metrics): Syncs, their duration and SPDK calls, and every SPDK
// call's latency and error code. Registries and serving are in package
// metrics.
package agentmetrics
