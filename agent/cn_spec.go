package agent

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// Errors of the controller-node reconciler. They end up in ObjectStatus
// messages; tests match them with errors.Is.
var (
	// errCNSpec: the desired state of a controller is malformed; nothing of
	// it is built, and its existing SPDK objects are left as they are.
	errCNSpec = errors.New("agent: invalid controller spec")
	// errCNLvstoreMissing: the DA is initialized but examine did not find
	// its lvstore on the raid; the agent never creates one then (invariant 2).
	errCNLvstoreMissing = errors.New("agent: disk array lvstore not found")
	// errCNLvolMissing: the DA is initialized, its lvstore is loaded, but its
	// lvol is not there (SPDK failed to open it when examine loaded the
	// lvstore, or it was deleted); the agent never creates a new, empty one
	// then: hosts would see a blank disk where their data was.
	errCNLvolMissing = errors.New("agent: disk array lvol not found")
	// errCNState: SPDK holds something the reconciler cannot repair by
	// itself (a foreign object under a VDA name, a raid that stays
	// configuring, an attach that yields no bdev).
	errCNState = errors.New("agent: unexpected SPDK state")
	// errCNNotReady: the object waits for something else (the DA's
	// initialization, a VD that is unreachable).
	errCNNotReady = errors.New("agent: not ready")
)

// cnBlockBytes is the block size of every VD and so of the raid and the
// DA lvol: the DA size must be a whole number of blocks.
const cnBlockBytes = 4096

// cnCntlr is one CntlrSpec, validated, with every SPDK name it needs.
type cnCntlr struct {
	id       string
	idx      int
	daID     string // "" when the spec's DA ID is unusable (nothing can be claimed)
	primary  bool
	epoch    int64
	hostNQN  nvmeof.NQN // a secondary attaches the primary's export as this host
	vdHost   nvmeof.NQN // a primary attaches the VDs as this host (per epoch)
	minCntl  uint16
	maxCntl  uint16
	size     uint64 // DA lvol bytes
	cluster  uint32 // DA lvstore cluster bytes
	stripKB  uint32
	initDone bool // DaSpec.initialized (primary and secondary)

	qos spdk.RateLimits // DaSpec.qos (primary)

	vds []cnVD // primary: raid members in idx order

	primaryListener nvmeof.TransportID // secondary
	exps            []*cnExp
	snaps           []*cnSnap  // primary: the DA's snapshots (cn_snap.go)
	clones          []*cnClone // primary: the DA's clones

	err error // the controller as a whole is unusable (wraps errCNSpec)
}

// cnVD is one raid member as the primary attaches it.
type cnVD struct {
	id       string
	listener nvmeof.TransportID
}

// cnExp is one exporter of the DA on this controller.
type cnExp struct {
	id          string
	portID      string
	nqn         nvmeof.NQN
	initiator   nvmeof.NQN   // "" when the spec names its hosts in host_nqns only
	secondaries []nvmeof.NQN // primary only, without the initiator
	hostNQNs    []nvmeof.NQN // the spec's host_nqns (the initiator is one more)
	snapID      string       // primary only: the snapshot it carries ("": see cloneID)
	cloneID     string       // primary only: the clone it carries ("" with snapID: the DA lvol)
	err         error        // this exporter is unusable (wraps errCNSpec)
}

// secondaryHosts returns the secondaries' host NQNs (a primary's), sorted,
// without any that is also one of the exporter's hosts.
func (e *cnExp) secondaryHosts() []string {
	var out []string
	for _, h := range e.secondaries {
		if h != e.initiator && !slices.Contains(e.hostNQNs, h) {
			out = append(out, string(h))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// hosts returns the host NQNs the exporter subsystem admits on this
// controller, sorted: the exporter's hosts (initiator and host_nqns), plus
// every secondary on a primary.
func (e *cnExp) hosts(primary bool) []string {
	set := map[string]bool{}
	if e.initiator != "" {
		set[string(e.initiator)] = true
	}
	for _, h := range e.hostNQNs {
		set[string(h)] = true
	}
	if primary {
		for _, h := range e.secondaries {
			set[string(h)] = true
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// planCN validates every controller of st. Controllers of one DA that
// appear twice are both refused (two controllers of a DA never share a CN).
func planCN(st *agentpb.CnState) []*cnCntlr {
	out := make([]*cnCntlr, 0, len(st.GetCntlrs()))
	byDA := map[string][]*cnCntlr{}
	byID := map[string][]*cnCntlr{}
	for _, spec := range st.GetCntlrs() {
		c := cnValidateCntlr(spec)
		out = append(out, c)
		if c.daID != "" {
			byDA[c.daID] = append(byDA[c.daID], c)
		}
		byID[spec.GetCntlrId()] = append(byID[spec.GetCntlrId()], c)
	}
	for da, cs := range byDA {
		if len(cs) > 1 {
			for _, c := range cs {
				c.setErr(fmt.Errorf("%w: disk array %s has %d controllers on this node", errCNSpec, da, len(cs)))
			}
		}
	}
	cnMarkDuplicateExps(out)
	for id, cs := range byID {
		if len(cs) > 1 {
			for _, c := range cs {
				c.setErr(fmt.Errorf("%w: controller %s appears %d times", errCNSpec, id, len(cs)))
			}
		}
	}
	return out
}

// cnMarkDuplicateExps refuses exporters whose ID or NQN another exporter of
// this node's state also uses: they would share SPDK objects.
func cnMarkDuplicateExps(cs []*cnCntlr) {
	count := map[string]int{}
	for _, c := range cs {
		for _, x := range c.exps {
			count["id "+x.id]++
			count["nqn "+string(x.nqn)]++
		}
	}
	for _, c := range cs {
		for _, x := range c.exps {
			if x.err == nil && (count["id "+x.id] > 1 || count["nqn "+string(x.nqn)] > 1) {
				x.err = fmt.Errorf("%w: exporter %q (%s) appears more than once", errCNSpec, x.id, x.nqn)
			}
		}
	}
}

func (c *cnCntlr) setErr(err error) {
	if c.err == nil {
		c.err = err
	}
}

// cnValidateCntlr turns spec into a cnCntlr; problems land in its err (and
// in the err of a single exporter when only that exporter is wrong).
func cnValidateCntlr(spec *agentpb.CntlrSpec) *cnCntlr {
	c := &cnCntlr{id: spec.GetCntlrId(), primary: spec.GetPrimary(), epoch: spec.GetEpoch()}
	fail := func(format string, a ...any) *cnCntlr {
		c.setErr(fmt.Errorf("%w: controller %q: %s", errCNSpec, c.id, fmt.Sprintf(format, a...)))
		return c
	}
	da := spec.GetDa()
	if nvmeof.ValidateID(da.GetId()) == nil {
		c.daID = da.GetId()
	}
	for _, e := range spec.GetExps() {
		c.exps = append(c.exps, cnValidateExp(e, c.primary))
	}
	if err := nvmeof.ValidateID(c.id); err != nil {
		return fail("%v", err)
	}
	if c.daID == "" {
		return fail("disk array ID %q is not a stable ID", da.GetId())
	}
	if spec.GetEpoch() < 0 || spec.GetEpoch() > nvmeof.MaxRaidEpoch {
		return fail("epoch %d out of range", spec.GetEpoch())
	}
	c.idx = int(spec.GetCntlrIdx())
	lo, hi, err := nvmeof.ControllerIDRange(c.idx)
	if err != nil {
		return fail("%v", err)
	}
	c.hostNQN, c.minCntl, c.maxCntl = nvmeof.HostNQN(c.id), lo, hi
	c.vdHost = nvmeof.PrimaryHostNQN(c.id, uint64(c.epoch))
	if c.primary {
		if err := c.validatePrimary(spec); err != nil {
			return fail("%v", err)
		}
		cnValidateVolumes(spec, c)
		return c
	}
	if err := nvmeof.ValidateID(spec.GetPrimaryCntlrId()); err != nil {
		return fail("primary controller: %v", err)
	}
	if c.primaryListener, err = cnTransportOf(spec.GetPrimaryListener()); err != nil {
		return fail("primary listener: %v", err)
	}
	c.initDone = spec.GetDa().GetInitialized() // a secondary re-exports only then (runSecondary)
	return c
}

func (c *cnCntlr) validatePrimary(spec *agentpb.CntlrSpec) error {
	da := spec.GetDa()
	c.size, c.stripKB, c.initDone = da.GetSizeBytes(), da.GetStripeSizeKb(), da.GetInitialized()
	if c.size == 0 || c.size%cnBlockBytes != 0 {
		return fmt.Errorf("size %d is not a positive multiple of %d", c.size, cnBlockBytes)
	}
	cl := da.GetClusterBytes()
	if cl < cnBlockBytes || cl%cnBlockBytes != 0 || cl > 1<<31 {
		return fmt.Errorf("cluster size %d is not a multiple of %d up to 2 GiB", cl, cnBlockBytes)
	}
	c.cluster = uint32(cl)
	var err error
	if c.qos, err = cnQoSOf(da.GetQos()); err != nil {
		return err
	}
	if c.stripKB < cnBlockBytes/1024 || bits.OnesCount32(c.stripKB) != 1 {
		return fmt.Errorf("strip size %d KiB is not a power of two >= 4", c.stripKB)
	}
	vds := spec.GetVds()
	if len(vds) == 0 {
		return errors.New("a primary needs its VDs")
	}
	c.vds = make([]cnVD, len(vds))
	seen := map[string]bool{}
	for _, v := range vds {
		if err := nvmeof.ValidateID(v.GetId()); err != nil {
			return fmt.Errorf("VD: %w", err)
		}
		if seen[v.GetId()] {
			return fmt.Errorf("VD %s listed twice", v.GetId())
		}
		seen[v.GetId()] = true
		i := int(v.GetIdx())
		if i >= len(vds) || c.vds[i].id != "" {
			return fmt.Errorf("VD %s: raid index %d is not a unique index below %d", v.GetId(), i, len(vds))
		}
		tid, err := cnTransportOf(v.GetDnListener())
		if err != nil {
			return fmt.Errorf("VD %s listener: %w", v.GetId(), err)
		}
		c.vds[i] = cnVD{id: v.GetId(), listener: tid}
	}
	return nil
}

func cnValidateExp(e *agentpb.ExpSpec, primary bool) *cnExp {
	x := &cnExp{id: e.GetId(), portID: e.GetPortId(), nqn: nvmeof.NQN(e.GetNqn()), initiator: nvmeof.NQN(e.GetInitiatorNqn())}
	fail := func(format string, a ...any) *cnExp {
		x.err = fmt.Errorf("%w: exporter %q: %s", errCNSpec, x.id, fmt.Sprintf(format, a...))
		return x
	}
	if err := nvmeof.ValidateID(x.id); err != nil {
		return fail("%v", err)
	}
	if x.portID == "" {
		return fail("empty port ID")
	}
	if n, ok := nvmeof.ParseName(string(x.nqn)); !ok || n.Kind != nvmeof.KindExpNQN {
		return fail("%q is not a VDA exporter NQN", x.nqn)
	}
	if x.initiator != "" {
		if err := x.initiator.Validate(); err != nil {
			return fail("initiator: %v", err)
		}
	}
	if err := x.validateHosts(e.GetHostNqns()); err != nil {
		return fail("%v", err)
	}
	if err := cnValidateExpVolume(x, e, primary); err != nil {
		return fail("volume: %v", err)
	}
	if !primary && len(e.GetSecondaryHostNqns()) > 0 {
		return fail("secondary host NQNs on a secondary")
	}
	for _, h := range e.GetSecondaryHostNqns() {
		n := nvmeof.NQN(h)
		if n.Validate() != nil {
			return fail("secondary host NQN %q is not an NQN", h)
		}
		if p, ok := nvmeof.ParseName(h); !ok || p.Kind != nvmeof.KindHostNQN {
			return fail("secondary host NQN %q is not a controller host NQN", h)
		}
		x.secondaries = append(x.secondaries, n)
	}
	return x
}

// cnMaxExpHosts bounds the hosts of one exporter (the portal admits 64).
const cnMaxExpHosts = 64

// validateHosts takes the spec's host_nqns: host NQNs (not VDA's own), at
// most cnMaxExpHosts; with the initiator, the exporter needs one host.
func (x *cnExp) validateHosts(hosts []string) error {
	if len(hosts) > cnMaxExpHosts {
		return fmt.Errorf("%d host NQNs, at most %d", len(hosts), cnMaxExpHosts)
	}
	for _, h := range hosts {
		n, err := nvmeof.ParseHostNQN(h)
		if err != nil {
			return fmt.Errorf("host NQN: %v", err)
		}
		x.hostNQNs = append(x.hostNQNs, n)
	}
	if x.initiator == "" && len(x.hostNQNs) == 0 {
		return errors.New("no host: neither initiator_nqn nor host_nqns")
	}
	return nil
}

// cnTransportOf converts and validates an API transport address.
func cnTransportOf(t *agentpb.Transport) (nvmeof.TransportID, error) {
	if t == nil {
		return nvmeof.TransportID{}, errors.New("missing")
	}
	return nvmeof.NewTransportID(t.GetTrtype(), t.GetAdrfam(), t.GetTraddr(), t.GetTrsvcid())
}
