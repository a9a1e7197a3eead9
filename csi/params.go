package csi

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	pb "github.com/vda-io/vda/api/portalpb"
)

// StorageClass parameters of CreateVolume.
const (
	ParamCntlrCnt           = "cntlrCnt"           // controllers per volume (1)
	ParamStripeCount        = "stripeCount"        // VDs the volume is striped over (1)
	ParamStripeSizeKB       = "stripeSizeKB"       // stripe size, a power of two (64)
	ParamPhysicalSizeFactor = "physicalSizeFactor" // physical size / volume size, >= 1 (1): room for snapshots
	ParamQoSRwIOPS          = "qosRwIOPS"          // read+write IOPS limit, a multiple of 1000
	ParamQoSRwMBps          = "qosRwMBps"          // read+write MiB/s limit
	ParamQoSRMBps           = "qosRMBps"           // read MiB/s limit
	ParamQoSWMBps           = "qosWMBps"           // write MiB/s limit
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
	uintParam := func(key string, max uint64) (uint64, bool, error) {
		s, ok := p[key]
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > max {
			return 0, false, fmt.Errorf("parameter %s=%q: want an integer in 0..%d", key, s, max)
		}
		return n, true, nil
	}
	qos := &pb.QosMsg{}
	for key, val := range p {
		var err error
		var n uint64
		switch key {
		case ParamCntlrCnt:
			n, _, err = uintParam(key, 8)
			v.cntlrCnt = uint32(n)
			if err == nil && n == 0 {
				err = fmt.Errorf("parameter %s must be at least 1", key)
			}
		case ParamStripeCount:
			n, _, err = uintParam(key, 32)
			v.stripeCount = int(n)
		case ParamStripeSizeKB:
			n, _, err = uintParam(key, 1024)
			v.stripeSizeKB = int(n)
		case ParamPhysicalSizeFactor:
			v.physicalFactor, err = strconv.ParseFloat(val, 64)
			if err != nil || v.physicalFactor < 1 || v.physicalFactor > 16 || math.IsNaN(v.physicalFactor) {
				err = fmt.Errorf("parameter %s=%q: want a number in 1..16", key, val)
			}
		case ParamQoSRwIOPS:
			qos.RwIosPerSec, _, err = uintParam(key, math.MaxUint32)
			if err == nil && qos.RwIosPerSec%1000 != 0 {
				err = fmt.Errorf("parameter %s=%q: want a multiple of 1000", key, val)
			}
		case ParamQoSRwMBps:
			qos.RwMbytesPerSec, _, err = uintParam(key, math.MaxUint32)
		case ParamQoSRMBps:
			qos.RMbytesPerSec, _, err = uintParam(key, math.MaxUint32)
		case ParamQoSWMBps:
			qos.WMbytesPerSec, _, err = uintParam(key, math.MaxUint32)
		case ParamDNLocations:
			v.dnLocations, err = parseLocations(key, val)
		default:
			// csi.storage.k8s.io/* keys come from the external
			// provisioner; anything else is a typo the user should see.
			if len(key) > 19 && key[:19] == "csi.storage.k8s.io/" {
				continue
			}
			err = fmt.Errorf("unknown parameter %q", key)
		}
		if err != nil {
			return v, err
		}
	}
	if qos.RwIosPerSec+qos.RwMbytesPerSec+qos.RMbytesPerSec+qos.WMbytesPerSec > 0 {
		v.qos = qos
	}
	return v, nil
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
