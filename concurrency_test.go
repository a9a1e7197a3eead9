package vda_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/etcdembed"
)

func openEmbedded(t testing.TB) store.Store {
	dir := t.TempDir()
	s, err := store.Open(context.Background(), (&url.URL{Scheme: "embedded", Path: dir}).String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// buildCluster adds dns DNs with pdsPerDN 128 MiB malloc PDs each and cns CNs.
func buildCluster(t testing.TB, c *vda.Cluster, dns, pdsPerDN, cns int) {
	ctx := context.Background()
	for i := range dns {
		name := fmt.Sprintf("dn%03d:9720", i)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: name, Listener: listener(nodeIP(0, i), "4420"), Location: fmt.Sprintf("rack%d", i%4)})
		require.NoError(t, err)
		for j := range pdsPerDN {
			_, err := c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: name, Name: fmt.Sprintf("pd%d", j), Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 134217728}})
			require.NoError(t, err)
		}
	}
	for i := range cns {
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("cn%03d:9820", i), Listener: listener(nodeIP(1, i), "4430")})
		require.NoError(t, err)
	}
}

func TestConcurrentCreateDiskArray(t *testing.T) {
	for name, open := range map[string]func(testing.TB) store.Store{"memstore": newStore, "etcd": openEmbedded} {
		t.Run(name, func(t *testing.T) { testConcurrentCreate(t, open(t)) })
	}
}

// testConcurrentCreate races more DA creates than fit through three
// Clusters on one store: exactly the ones that fit succeed, and every
// counter matches the DAs that exist.
func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	clusters := []*vda.Cluster{newCluster(t, s), newCluster(t, s), newCluster(t, s)}
	buildCluster(t, clusters[0], 6, 2, 4)
	// 12 PDs of 124 MiB hold 6 VDs of 20 MiB each: 36 DAs of 2 VDs.
	const attempts, fit = 48, 36
	var wg sync.WaitGroup
	errs := make([]error, attempts)
	for i := range attempts {
		wg.Go(func() {
			_, errs[i] = clusters[i%3].CreateDiskArray(ctx, vda.DiskArraySpec{Name: fmt.Sprintf("da%02d", i), CntlrCount: 2,
				SizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			require.True(t, errors.Is(err, vda.ErrResourceExhausted), "%v", err)
		}
	}
	require.Equal(t, fit, ok)

	das, _, err := clusters[1].ListDiskArrays(ctx, vda.Page{Limit: vda.MaxPageSize})
	require.NoError(t, err)
	require.Len(t, das, fit)
	pdBytes, pdVDs, cnCntlrs := map[string]uint64{}, map[string]int{}, map[string]int{}
	for _, da := range das {
		onePD, oneCN := map[string]bool{}, map[string]bool{}
		for _, vd := range da.VDs {
			require.False(t, onePD[vd.PDID], "%s has two VDs on one PD", da.Name)
			onePD[vd.PDID] = true
			pdBytes[vd.DNName+"/"+vd.PDName] += vd.SizeBytes
			pdVDs[vd.DNName+"/"+vd.PDName]++
		}
		for _, cn := range da.Cntlrs {
			require.False(t, oneCN[cn.CNName], "%s has two controllers on %s", da.Name, cn.CNName)
			oneCN[cn.CNName] = true
			cnCntlrs[cn.CNName]++
		}
	}
	pds, _, err := clusters[2].ListPhysicalDisks(ctx, "", vda.Page{Limit: vda.MaxPageSize})
	require.NoError(t, err)
	for _, pd := range pds {
		key := pd.DNName + "/" + pd.Name
		require.LessOrEqual(t, pdBytes[key], pd.CapacityBytes(), "%s over-allocated", key)
		require.Equal(t, pdBytes[key], pd.AllocatedBytes, key)
		require.Equal(t, pdVDs[key], pd.VDCount, key)
	}
	cns, _, err := clusters[0].ListControllerNodes(ctx, vda.Page{})
	require.NoError(t, err)
	for _, cn := range cns {
		require.Equal(t, cnCntlrs[cn.Name], cn.CntlrCount, cn.Name)
	}
}
