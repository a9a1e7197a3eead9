package monitor

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
)

// BenchmarkWriteBackUnchanged measures a controller node's status
// write-back when nothing changed: the node reports every controller and
// exporter port it holds on every push (das DAs over 2 controller nodes,
// all healthy and written already), and each is skipped (writeBack's own
// copy and the snapshot hold it). This is the monitor's share of every
// push that grows with the objects on the node.
func BenchmarkWriteBackUnchanged(b *testing.B) {
	for _, n := range []int{100, 400} {
		b.Run(fmt.Sprintf("das=%d", n), func(b *testing.B) {
			ctx := context.Background()
			cs := &countingStore{Store: newMemStore(b)}
			tc := newTestCluster(b, cs, 2, 2)
			var cnID string
			for i := range n {
				da := tc.createDA(fmt.Sprintf("da%d", i), 2, 2)
				cnID = da.Cntlrs[0].CNID
			}
			m, err := New(testConfig(cs, "m0"))
			require.NoError(b, err)
			w := &worker{m: m, ctx: ctx, id: cnID, role: RoleCN, log: m.log}
			snap, err := LoadSnapshot(ctx, cs)
			require.NoError(b, err)
			np := Build(snap).Nodes[cnID]
			reply := &agentpb.SyncReply{}
			for _, da := range snap.DAs {
				for _, c := range da.Spec.Cntlrs {
					if c.CNID == cnID {
						reply.Objects = append(reply.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_CNTLR, Id: c.ID, Ok: true})
					}
				}
			}
			for _, exp := range snap.Exps {
				for _, p := range exp.Spec.Ports {
					for _, c := range snap.DAs[exp.Spec.DAName].Spec.Cntlrs {
						if c.Idx == p.CntlrIdx && c.CNID == cnID {
							reply.Objects = append(reply.Objects, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_EXP_PORT, Id: p.ID, Ok: true})
						}
					}
				}
			}
			w.writeBack(snap, np, reply, true) // written
			snap, err = LoadSnapshot(ctx, cs)  // which the snapshot now holds
			require.NoError(b, err)
			np = Build(snap).Nodes[cnID]
			w.writeBack(snap, np, reply, false)
			txns := cs.statusTxns.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				w.writeBack(snap, np, reply, false)
			}
			b.StopTimer()
			require.Equal(b, txns, cs.statusTxns.Load(), "nothing changed: nothing written")
			b.ReportMetric(float64(len(reply.Objects)), "objects")
		})
	}
}
