// Package storemetrics is the metadata store's Prometheus metrics: Wrap
// returns a store.Store that times every transaction and read of the
// store it wraps and counts the transactions that lost a compare-and-swap
// race (conflicts) and the calls that failed. Registries and serving are
// in package metrics.
package storemetrics
