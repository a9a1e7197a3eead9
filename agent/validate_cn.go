package agent

import (
	"fmt"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

func (v *validator) cn(st *agentpb.CnState) {
	for i, c := range st.GetCntlrs() {
		f := fmt.Sprintf("cn.cntlrs[%d]", i)
		v.id(f+".cntlr_id", "cntlr", c.GetCntlrId())
		if _, _, err := nvmeof.ControllerIDRange(int(c.GetCntlrIdx())); err != nil {
			v.fail(f+".cntlr_idx", "%v", err)
		}
		v.da(f+".da", c)
		if c.GetPrimary() {
			v.primary(f, c)
		} else {
			v.secondary(f, c)
		}
		for j, e := range c.GetExps() {
			v.exp(fmt.Sprintf("%s.exps[%d]", f, j), c, e)
		}
	}
}

func (v *validator) da(f string, c *agentpb.CntlrSpec) {
	da := c.GetDa()
	if da == nil {
		v.fail(f, "is not set")
		return
	}
	// One controller of a DA per CN: the DA ID is unique in a CN's state.
	v.id(f+".id", "da", da.GetId())
	if v.err == nil {
		v.epoch(f[:len(f)-len(".da")]+".epoch", da.GetId(), c.GetEpoch())
	}
	cl := da.GetClusterBytes()
	if cl < minDAClusterBytes || cl > maxDAClusterBytes || cl&(cl-1) != 0 {
		v.fail(f+".cluster_bytes", "%d is not a power of two in %d..%d", cl, minDAClusterBytes, maxDAClusterBytes)
	} else {
		v.size(f+".size_bytes", da.GetSizeBytes(), cl, 0)
	}
	if s := da.GetStripeSizeKb(); s < minStripeSizeKB || s > maxStripeSizeKB || s&(s-1) != 0 {
		v.fail(f+".stripe_size_kb", "%d is not a power of two in %d..%d", s, minStripeSizeKB, maxStripeSizeKB)
	}
}

func (v *validator) transport(field string, t *agentpb.Transport) {
	if t == nil {
		v.fail(field, "is not set")
		return
	}
	if _, err := nvmeof.NewTransportID(t.GetTrtype(), t.GetAdrfam(), t.GetTraddr(), t.GetTrsvcid()); err != nil {
		v.fail(field, "%v", err)
	}
}

func (v *validator) primary(f string, c *agentpb.CntlrSpec) {
	vds := c.GetVds()
	if len(vds) == 0 || len(vds) > maxStripeCount {
		v.fail(f+".vds", "a primary needs 1..%d VDs, not %d", maxStripeCount, len(vds))
		return
	}
	seen := make([]bool, len(vds))
	for j, r := range vds {
		g := fmt.Sprintf("%s.vds[%d]", f, j)
		v.id(g+".id", "vdref", r.GetId())
		if idx := r.GetIdx(); int(idx) >= len(vds) || seen[idx] {
			v.fail(g+".idx", "%d is a duplicate or not in 0..%d", idx, len(vds)-1)
		} else {
			seen[idx] = true
		}
		v.transport(g+".dn_listener", r.GetDnListener())
	}
	if p := c.GetPrimaryCntlrId(); p != "" && p != c.GetCntlrId() {
		v.fail(f+".primary_cntlr_id", "%q on a primary names another controller", p)
	}
	if c.GetPrimaryListener() != nil {
		v.transport(f+".primary_listener", c.GetPrimaryListener())
	}
}

func (v *validator) secondary(f string, c *agentpb.CntlrSpec) {
	if len(c.GetVds()) > 0 {
		v.fail(f+".vds", "a secondary attaches no VDs")
	}
	p := c.GetPrimaryCntlrId()
	if err := nvmeof.ValidateID(p); err != nil {
		v.fail(f+".primary_cntlr_id", "%v", err)
	} else if p == c.GetCntlrId() {
		v.fail(f+".primary_cntlr_id", "a secondary is not its own primary")
	}
	v.transport(f+".primary_listener", c.GetPrimaryListener())
}

func (v *validator) exp(f string, c *agentpb.CntlrSpec, e *agentpb.ExpSpec) {
	v.id(f+".id", "exp", e.GetId())
	v.id(f+".port_id", "port", e.GetPortId())
	nqn := e.GetNqn()
	if err := nvmeof.NQN(nqn).Validate(); err != nil {
		v.fail(f+".nqn", "%v", err)
	} else if n, ok := nvmeof.ParseName(nqn); !ok || n.Kind != nvmeof.KindExpNQN {
		v.fail(f+".nqn", "%q is not an exporter NQN", nqn)
	} else {
		v.unique(f+".nqn", "expnqn", nqn)
	}
	if _, err := nvmeof.ParseHostNQN(e.GetInitiatorNqn()); err != nil {
		v.fail(f+".initiator_nqn", "%v", err)
	}
	hosts := e.GetSecondaryHostNqns()
	if !c.GetPrimary() && len(hosts) > 0 {
		v.fail(f+".secondary_host_nqns", "only a primary admits secondaries")
	}
	seen := map[string]bool{}
	for k, h := range hosts {
		g := fmt.Sprintf("%s.secondary_host_nqns[%d]", f, k)
		v.hostNQN(g, h)
		if seen[h] || h == string(nvmeof.HostNQN(c.GetCntlrId())) {
			v.fail(g, "%q is a duplicate or the primary's own host NQN", h)
		}
		seen[h] = true
	}
}
