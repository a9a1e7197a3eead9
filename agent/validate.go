package agent

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// Limits of a valid request. They mirror the vda package's (the agent does
// not import it: dependencies point from the root to subpackages).
const (
	blockBytes        = 4096    // block size of every PD bdev
	pdClusterBytes    = 4 << 20 // cluster size of every PD lvstore (vda.PDClusterBytes)
	minMallocBytes    = 2 * pdClusterBytes
	maxSizeBytes      = 1 << 50
	mib               = 1 << 20
	maxFilenameBytes  = 1024
	minDAClusterBytes = blockBytes
	maxDAClusterBytes = 1 << 30
	minStripeSizeKB   = 4
	maxStripeSizeKB   = 1024
	maxStripeCount    = 32
)

// pciAddr is a PCIe address, with or without its domain.
var pciAddr = regexp.MustCompile(`^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// validateRequest checks every field of req for an agent of role and
// returns the epoch of every disk array it names. Errors wrap
// ErrInvalidArgument and name the offending field.
func validateRequest(req *agentpb.SyncRequest, role Role) (map[string]int64, error) {
	if req.GetGeneration() < 1 {
		return nil, invalid("generation", "%d is not positive", req.GetGeneration())
	}
	if err := nvmeof.ValidateID(req.GetNodeId()); err != nil {
		return nil, invalid("node_id", "%v", err)
	}
	v := &validator{epochs: map[string]int64{}, ids: map[string]string{}}
	switch st := req.GetState().(type) {
	case *agentpb.SyncRequest_Dn:
		if role != RoleDN {
			return nil, invalid("dn", "a %s agent does not take disk node state", role)
		}
		v.dn(st.Dn)
	case *agentpb.SyncRequest_Cn:
		if role != RoleCN {
			return nil, invalid("cn", "a %s agent does not take controller node state", role)
		}
		v.cn(st.Cn)
	default:
		return nil, invalid("state", "neither dn nor cn is set")
	}
	if v.err != nil {
		return nil, v.err
	}
	return v.epochs, nil
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidArgument, field, fmt.Sprintf(format, args...))
}

// validator collects the first error and what must be unique.
type validator struct {
	err    error
	epochs map[string]int64  // DA ID -> epoch
	ids    map[string]string // "kind/value" -> field that used it
}

func (v *validator) fail(field, format string, args ...any) {
	if v.err == nil {
		v.err = invalid(field, format, args...)
	}
}

// id checks a stable ID that must be unique among IDs of the same kind.
func (v *validator) id(field, kind, id string) {
	if err := nvmeof.ValidateID(id); err != nil {
		v.fail(field, "%v", err)
		return
	}
	v.unique(field, kind, id)
}

func (v *validator) unique(field, kind, value string) {
	key := kind + "/" + value
	if prev, dup := v.ids[key]; dup {
		v.fail(field, "%q is also %s", value, prev)
		return
	}
	v.ids[key] = field
}

// epoch records a DA's epoch; every object of one DA must carry the same.
func (v *validator) epoch(field, daID string, e int64) {
	if e < 1 {
		v.fail(field, "%d is not positive", e)
		return
	}
	if prev, ok := v.epochs[daID]; ok && prev != e {
		v.fail(field, "%d differs from epoch %d given for the same disk array", e, prev)
		return
	}
	v.epochs[daID] = e
}

func (v *validator) size(field string, n, multiple uint64, lo uint64) {
	switch {
	case n < max(lo, 1):
		v.fail(field, "%d is less than %d", n, max(lo, 1))
	case n > maxSizeBytes:
		v.fail(field, "%d is more than %d", n, uint64(maxSizeBytes))
	case n%multiple != 0:
		v.fail(field, "%d is not a multiple of %d", n, multiple)
	}
}

// hostNQN checks a controller host NQN (nvmeof.HostNQN).
func (v *validator) hostNQN(field, s string) {
	if err := nvmeof.NQN(s).Validate(); err != nil {
		v.fail(field, "%v", err)
		return
	}
	if n, ok := nvmeof.ParseName(s); !ok || n.Kind != nvmeof.KindHostNQN {
		v.fail(field, "%q is not a controller host NQN", s)
	}
}

// primaryHostNQN checks the host a VD admits: the primary's host NQN of
// the VD's own epoch (nvmeof.PrimaryHostNQN), so a disk node can never be
// told to admit a primary of another epoch.
func (v *validator) primaryHostNQN(field, s string, epoch int64) {
	if err := nvmeof.NQN(s).Validate(); err != nil {
		v.fail(field, "%v", err)
		return
	}
	n, ok := nvmeof.ParseName(s)
	switch {
	case !ok || n.Kind != nvmeof.KindPrimaryHostNQN:
		v.fail(field, "%q is not a primary host NQN", s)
	case epoch < 0 || n.Epoch != uint64(epoch):
		v.fail(field, "%q is the primary of epoch %d, not of the VD's epoch %d", s, n.Epoch, epoch)
	}
}

func (v *validator) dn(st *agentpb.DnState) {
	for i, pd := range st.GetPds() {
		f := fmt.Sprintf("dn.pds[%d]", i)
		v.id(f+".id", "pd", pd.GetId())
		v.pdConf(f, pd)
		for j, vd := range pd.GetVds() {
			g := fmt.Sprintf("%s.vds[%d]", f, j)
			v.id(g+".id", "vd", vd.GetId())
			if err := nvmeof.ValidateID(vd.GetDaId()); err != nil {
				v.fail(g+".da_id", "%v", err)
			} else {
				v.epoch(g+".epoch", vd.GetDaId(), vd.GetEpoch())
			}
			v.size(g+".size_bytes", vd.GetSizeBytes(), pdClusterBytes, 0)
			v.primaryHostNQN(g+".host_nqn", vd.GetHostNqn(), vd.GetEpoch())
		}
	}
}

func (v *validator) pdConf(f string, pd *agentpb.PdSpec) {
	switch c := pd.GetConf().(type) {
	case *agentpb.PdSpec_Malloc:
		v.size(f+".malloc.size_bytes", c.Malloc.GetSizeBytes(), blockBytes, minMallocBytes)
	case *agentpb.PdSpec_Aio:
		name := c.Aio.GetFilename()
		if p := filenameProblem(name); p != "" {
			v.fail(f+".aio.filename", "%q %s", name, p)
			return
		}
		v.unique(f+".aio.filename", "aio", name)
	case *agentpb.PdSpec_Nvme:
		a := c.Nvme.GetTraddr()
		if !pciAddr.MatchString(a) {
			v.fail(f+".nvme.traddr", "%q is not a PCIe address like 0000:01:00.0", a)
			return
		}
		v.unique(f+".nvme.traddr", "pcie", normPCIAddr(a))
	default:
		v.fail(f+".conf", "none of malloc, aio and nvme is set")
	}
}

// normPCIAddr returns a PCIe address with its domain, in lower case.
func normPCIAddr(a string) string {
	a = strings.ToLower(a)
	if strings.Count(a, ":") == 1 {
		a = "0000:" + a
	}
	return a
}

func filenameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxFilenameBytes:
		return fmt.Sprintf("is longer than %d bytes", maxFilenameBytes)
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "contains a control character"
	case !filepath.IsAbs(name) || filepath.Clean(name) != name:
		return "is not a clean absolute path"
	}
	return ""
}
