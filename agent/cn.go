package agent

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// cnNode reconciles a controller node's SPDK with its desired CnState.
type cnNode struct {
	c        *spdk.Client
	listener nvmeof.TransportID
	log      hclog.Logger
}

// newCNNode returns the controller-node reconciler over c; listener is the
// agent's NVMe-oF listener (--listener-conf), where exporters listen.
func newCNNode(c *spdk.Client, listener nvmeof.TransportID, log hclog.Logger) *cnNode {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &cnNode{c: c, listener: listener, log: log.Named("cn")}
}

// sync converges SPDK to st and reports the status of every controller and
// exporter port st names.
func (n *cnNode) sync(ctx context.Context, st *agentpb.CnState) []*agentpb.ObjectStatus {
	_ = ctx
	var out []*agentpb.ObjectStatus
	for _, c := range st.GetCntlrs() {
		out = append(out, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_CNTLR, Id: c.GetCntlrId(), Error: "cn: not implemented yet"})
	}
	return out
}
