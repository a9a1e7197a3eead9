package monitor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
)

// A da modify reaches every controller's DaSpec: the grown size and the
// QoS limits (none: no QosSpec).
func TestPlanDASizeAndQoS(t *testing.T) {
	f := newFixture(t, 2)
	_, plan := f.plan(t)
	for _, c := range f.da.Cntlrs {
		da := nodeByName(t, plan, c.CNName).Request.GetCn().GetCntlrs()[0].GetDa()
		require.Nil(t, da.GetQos())
		require.EqualValues(t, 32<<20, da.GetSizeBytes())
	}
	size := f.da.MaxSizeBytes()
	q := vda.QoS{RWIOsPerSec: 5000, RWMBytesPerSec: 1, ReadMBytesPerSec: 2, WriteMBytesPerSec: 3}
	_, err := f.c.ModifyDiskArray(context.Background(), "da0", vda.DiskArrayUpdate{SizeBytes: &size, QoS: &q})
	require.NoError(t, err)
	_, plan = f.plan(t)
	want := &agentpb.QosSpec{RwIosPerSec: 5000, RwMbytesPerSec: 1, RMbytesPerSec: 2, WMbytesPerSec: 3}
	for _, c := range f.da.Cntlrs {
		da := nodeByName(t, plan, c.CNName).Request.GetCn().GetCntlrs()[0].GetDa()
		require.True(t, proto.Equal(want, da.GetQos()), "%v", da.GetQos())
		require.Equal(t, size, da.GetSizeBytes())
	}
}
