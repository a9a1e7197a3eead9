package csi

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
)

// StorageClass parameters of CreateVolume.
const (
	ParamCntlrCnt           = "cntlrCnt"           // controllers per volume (1)
	ParamStripeCount        = "stripeCount"        // VDs the volume is striped over (1)
	ParamStripeSizeKB       = "stripeSizeKB"       // stripe size, a power of two (64)
	ParamPhysicalSizeFactor = "physicalSizeFactor" // physical size / volume size, >= 1 (1): room for snapshots
	// The QoS limits (0: none) are also the mutable parameters
	// (MutableParameters) of a VolumeAttributesClass.
	ParamQoSRwIOPS = "qosRwIOPS" // read+write IOPS limit, a multiple of 1000
	ParamQoSRwMBps = "qosRwMBps" // read+write MiB/s limit
	ParamQoSRMBps  = "qosRMBps"  // read MiB/s limit
	ParamQoSWMBps  = "qosWMBps"  // write MiB/s limit
	// ParamDNLocations constrains where a volume's data goes: VDs only on
	// PDs of DNs of these locations (comma-separated VDA locations).
	ParamDNLocations = "dnLocations"
)

// volumeParams is a CreateVolume request's parameters, checked.
type volumeParams struct {
	cntlrCnt       uint32
	stripeCount    int
	stripeSizeKB   int
	physicalFactor float64
	qos            *pb.QosMsg
	dnLocations    []string
}

func parseParams(p map[string]string) (volumeParams, error) {
	v := volumeParams{cntlrCnt: 1, stripeCount: 1, stripeSizeKB: 64, physicalFactor: 1}
	qos := &pb.QosMsg{}
	for key, val := range p {
		var err error
		var n uint64
		switch key {
		case ParamCntlrCnt:
			n, err = uintParam(key, val, 8)
			v.cntlrCnt = uint32(n)
			if err == nil && n == 0 {
				err = fmt.Errorf("parameter %s must be at least 1", key)
			}
		case ParamStripeCount:
			n, err = uintParam(key, val, 32)
			v.stripeCount = int(n)
		case ParamStripeSizeKB:
			n, err = uintParam(key, val, 1024)
			v.stripeSizeKB = int(n)
		case ParamPhysicalSizeFactor:
			v.physicalFactor, err = strconv.ParseFloat(val, 64)
			if err != nil || v.physicalFactor < 1 || v.physicalFactor > 16 || math.IsNaN(v.physicalFactor) {
				err = fmt.Errorf("parameter %s=%q: want a number in 1..16", key, val)
			}
		case ParamDNLocations:
			v.dnLocations, err = parseLocations(key, val)
		default:
			var ok bool
			if ok, err = setQoSParam(qos, key, val); ok {
				break
			}
			// csi.storage.k8s.io/* keys come from the external
			// provisioner; anything else is a typo the user should see.
			if strings.HasPrefix(key, "csi.storage.k8s.io/") {
				continue
			}
			err = fmt.Errorf("unknown parameter %q", key)
		}
		if err != nil {
			return v, err
		}
	}
	if !proto.Equal(qos, &pb.QosMsg{}) {
		v.qos = qos
	}
	return v, nil
}

// withMutable applies CreateVolume's mutable parameters m to v's QoS:
// they take precedence over the StorageClass's.
func (v *volumeParams) withMutable(m map[string]string) error {
	if len(m) == 0 {
		return nil
	}
	qos := &pb.QosMsg{}
	if v.qos != nil {
		qos = proto.CloneOf(v.qos)
	}
	if err := applyMutable(qos, m); err != nil {
		return err
	}
	v.qos = qos
	if proto.Equal(qos, &pb.QosMsg{}) {
		v.qos = nil
	}
	return nil
}

// uintParam reads parameter key's value val, an integer in 0..max.
func uintParam(key, val string, max uint64) (uint64, error) {
	n, err := strconv.ParseUint(val, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("parameter %s=%q: want an integer in 0..%d", key, val, max)
	}
	return n, nil
}

// setQoSParam sets the QoS limit of parameter key in q, if key is one of
// the QoS parameters (the StorageClass's and the mutable ones are the
// same keys): only values VDA stores unchanged (SPDK would round the
// others), 0 for no limit.
func setQoSParam(q *pb.QosMsg, key, val string) (bool, error) {
	var err error
	switch key {
	case ParamQoSRwIOPS:
		q.RwIosPerSec, err = uintParam(key, val, vda.MaxQoSIOPS)
		if err == nil && q.RwIosPerSec%vda.QoSIOPSUnit != 0 {
			err = fmt.Errorf("parameter %s=%q: want a multiple of %d (SPDK counts IOPS in thousands)", key, val, vda.QoSIOPSUnit)
		}
	case ParamQoSRwMBps:
		q.RwMbytesPerSec, err = uintParam(key, val, vda.MaxQoSMBytesPerSec)
	case ParamQoSRMBps:
		q.RMbytesPerSec, err = uintParam(key, val, vda.MaxQoSMBytesPerSec)
	case ParamQoSWMBps:
		q.WMbytesPerSec, err = uintParam(key, val, vda.MaxQoSMBytesPerSec)
	default:
		return false, nil
	}
	return true, err
}

// MutableParameters are the keys of a VolumeAttributesClass's parameters
// (CSI mutable_parameters): a DA's QoS limits, which VDA changes on a
// volume in use. The StorageClass accepts them too; a class's value wins.
var MutableParameters = []string{ParamQoSRwIOPS, ParamQoSRwMBps, ParamQoSRMBps, ParamQoSWMBps}

// applyMutable sets in q the limits that the mutable parameters m name,
// and leaves the others as they are (the CSI spec: a key absent changes
// nothing).
func applyMutable(q *pb.QosMsg, m map[string]string) error {
	for key, val := range m {
		ok, err := setQoSParam(q, key, val)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("mutable parameter %q: not one VDA can change on a volume (%s)", key, strings.Join(MutableParameters, ", "))
		}
	}
	return nil
}

// CheckMutableParameters reports whether m is a valid set of
// VolumeAttributesClass parameters for this driver (what
// ControllerModifyVolume would accept for a DA's volume).
func CheckMutableParameters(m map[string]string) error {
	return applyMutable(&pb.QosMsg{}, m)
}

// daConf is the portal's da_conf JSON of p.
func (v volumeParams) daConf() string {
	b, _ := json.Marshal(map[string]int{"stripe_count": v.stripeCount, "stripe_size_kb": v.stripeSizeKB})
	return string(b)
}

// CheckParameters reports whether p is a valid set of StorageClass
// parameters for this driver (what CreateVolume would accept), so that
// manifests can be checked before they reach a cluster.
func CheckParameters(p map[string]string) error {
	_, err := parseParams(p)
	return err
}

// parseLocations reads a comma-separated list of distinct, non-empty
// locations (at most 16).
func parseLocations(key, val string) ([]string, error) {
	var locs []string
	for _, l := range strings.Split(val, ",") {
		l = strings.TrimSpace(l)
		if l == "" || len(l) > 255 || !utf8.ValidString(l) {
			return nil, fmt.Errorf("parameter %s=%q: want comma-separated locations, none empty", key, val)
		}
		if slices.Contains(locs, l) {
			return nil, fmt.Errorf("parameter %s=%q: location %q twice", key, val, l)
		}
		locs = append(locs, l)
	}
	if len(locs) > 16 {
		return nil, fmt.Errorf("parameter %s=%q: at most 16 locations", key, val)
	}
	return locs, nil
}
