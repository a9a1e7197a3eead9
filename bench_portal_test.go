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
	cfg := vda.DefaultConfig(s)
	cfg.PlacementAffinity = fmt.Sprintf("portal%d", k)
	c, err := vda.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
