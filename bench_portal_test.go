package vda_test

import (
	"fmt"
	"testing"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// portalCluster is the Cluster of the k-th portal of a benchmark, made as
// vda-portal makes it: with a placement affinity of its own (vda-portal
// uses its host name and address), so that portals sharing a store
// prefer different controller nodes among nearly equally loaded ones.
func portalCluster(tb testing.TB, s store.Store, k int) *vda.Cluster {
	c, err := newPortalCluster(s, k)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// newPortalCluster is portalCluster for a portal that runs as a process
// of its own (BenchmarkCreatePortalProcs), where there is no testing.TB.
func newPortalCluster(s store.Store, k int) (*vda.Cluster, error) {
	cfg := vda.DefaultConfig(s)
	cfg.PlacementAffinity = fmt.Sprintf("portal%d", k)
	return vda.New(cfg)
}
