// Package alloc decides where a new disk array goes: which physical disks
// hold its virtual disks and which controller nodes host its controllers.
//
// It is pure (no I/O, no clock, no randomness) and imports nothing else of
// VDA, so a placement can be recomputed, tested and fuzzed in isolation;
// the caller reads the candidates, asks a Policy, and commits the answer
// in one store transaction (the root package's Cluster does this, retrying
// with a higher Request.Attempt when a concurrent create won the race).
//
// Default is the default Policy: capacity-aware (disks with the most free
// space first, so fill levels even out), spreading a DA's VDs and its
// controllers across failure domains (Location) and nodes whenever there
// are enough of them, least-loaded controller nodes first, never two VDs
// of a DA on one disk or two controllers on one node, never an unavailable
// disk or node, and deterministic for a given request. When it cannot
// place a request it returns a *Shortage that says what was short.
package alloc
