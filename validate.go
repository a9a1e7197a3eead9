package vda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vda-io/vda/nvmeof"
)

// Field limits.
const (
	MaxDescriptionBytes = 256
	MaxLocationBytes    = 255
	MaxFilenameBytes    = 1024
	// MinMallocBytes is the smallest malloc PD: its lvstore needs one
	// metadata and one data cluster.
	MinMallocBytes = 2 * PDClusterBytes
	// MaxPDBytes bounds a malloc PD's size (1 PiB).
	MaxPDBytes = 1 << 50
)

// pciAddr is [domain:]bus:device.function, with SPDK's limits (device
// up to 0x1f, function up to 7).
var pciAddr = regexp.MustCompile(`^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]$`)

// ValidateName checks a user-chosen name of kind (see
// nvmeof.ValidateResourceName) and wraps the failure in ErrInvalidArgument.
func ValidateName(kind nvmeof.ResourceKind, name string) error {
	if err := nvmeof.ValidateResourceName(kind, name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return nil
}

// ValidateDescription checks free text: at most MaxDescriptionBytes of
// UTF-8 without control characters.
func ValidateDescription(s string) error {
	return validateText("description", s, MaxDescriptionBytes)
}

func validateText(field, s string, maxBytes int) error {
	if len(s) > maxBytes {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidArgument, field, maxBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidArgument, field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains control character %U", ErrInvalidArgument, field, r)
		}
	}
	return nil
}

// ParseListenerConf validates a node's listener configuration and returns
// it in canonical form.
func ParseListenerConf(field, s string) (string, error) {
	t, err := nvmeof.ParseListenerConf(s)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrInvalidArgument, field, err)
	}
	return t.JSON(), nil
}

// ParseInitiatorNQN validates a host NQN given by --initiator-nqn.
func ParseInitiatorNQN(s string) (string, error) {
	n, err := nvmeof.ParseHostNQN(s)
	if err != nil {
		return "", fmt.Errorf("%w: initiator_nqn: %w", ErrInvalidArgument, err)
	}
	return n.String(), nil
}

func decodeStrict(field, s string, v any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidArgument, field, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s: trailing data", ErrInvalidArgument, field)
	}
	return nil
}

// Device names the storage a PD uses on its DN: the aio file or the NVMe
// PCIe address ("" for malloc, which has no device). Two PDs of one DN
// never share a device.
func (c PDConf) Device() string {
	switch c.Type {
	case PDAio:
		return c.Filename
	case PDNVMe:
		return c.TrAddr
	}
	return ""
}

// ParsePDConf parses and validates --pd-conf.
func ParsePDConf(s string) (PDConf, error) {
	var c PDConf
	if err := decodeStrict("pd_conf", s, &c); err != nil {
		return PDConf{}, err
	}
	bad := func(format string, a ...any) (PDConf, error) {
		return PDConf{}, fmt.Errorf("%w: pd_conf: "+format, append([]any{ErrInvalidArgument}, a...)...)
	}
	switch c.Type {
	case PDMalloc:
		if c.Filename != "" || c.TrAddr != "" {
			return bad("malloc takes only size")
		}
		if c.SizeBytes < MinMallocBytes || c.SizeBytes > MaxPDBytes || c.SizeBytes%BlockBytes != 0 {
			return bad("malloc size %d is not a multiple of %d in %d..%d",
				c.SizeBytes, BlockBytes, uint64(MinMallocBytes), uint64(MaxPDBytes))
		}
	case PDAio:
		if c.SizeBytes != 0 || c.TrAddr != "" {
			return bad("aio takes only filename")
		}
		if err := validateText("pd_conf filename", c.Filename, MaxFilenameBytes); err != nil {
			return PDConf{}, err
		}
		if !path.IsAbs(c.Filename) || path.Clean(c.Filename) != c.Filename {
			return bad("aio filename %q is not a clean absolute path", c.Filename)
		}
	case PDNVMe:
		if c.SizeBytes != 0 || c.Filename != "" {
			return bad("nvme takes only traddr")
		}
		if !pciAddr.MatchString(c.TrAddr) {
			return bad("nvme traddr %q is not a PCIe address like 0000:01:00.0", c.TrAddr)
		}
		// One spelling per device, so two PDs cannot name one disk
		// differently: lower case, with the domain.
		c.TrAddr = strings.ToLower(c.TrAddr)
		if len(c.TrAddr) == len("01:00.0") {
			c.TrAddr = "0000:" + c.TrAddr
		}
	default:
		return bad("type %q is not malloc, aio or nvme", c.Type)
	}
	return c, nil
}

// ParseDAConf parses and validates --da-conf.
func ParseDAConf(s string) (DAConf, error) {
	var c DAConf
	if err := decodeStrict("da_conf", s, &c); err != nil {
		return DAConf{}, err
	}
	if err := validateLayoutArgs(MinDAClusterBytes, MinDAClusterBytes, c.StripeCount, c.StripeSizeKB); err != nil {
		return DAConf{}, err
	}
	return c, nil
}

// ValidateCntlrCount checks --cntlr-cnt.
func ValidateCntlrCount(n int) error {
	if n < 1 || n > MaxCntlrCount {
		return fmt.Errorf("%w: cntlr_cnt %d is not in 1..%d", ErrInvalidArgument, n, MaxCntlrCount)
	}
	return nil
}
