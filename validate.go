package vda

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vda-io/vda/internal/strictjson"
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

// ParseListenerConf parses a node's listener configuration as the CLI
// gives it (--dn-listener-conf, --cn-listener-conf; see
// nvmeof.ParseListenerConf), normalised:
//
//	{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}
//
// Errors wrap ErrInvalidArgument.
func ParseListenerConf(s string) (nvmeof.TransportID, error) {
	t, err := nvmeof.ParseListenerConf(s)
	if err != nil {
		return nvmeof.TransportID{}, fmt.Errorf("%w: listener_conf: %w", ErrInvalidArgument, err)
	}
	return t, nil
}

// normalListener validates a node's listener as the Go API gives it and
// returns it normalised (any case for TrType and AdrFam, AdrFam inferred
// when empty, IPv6 in canonical form; see nvmeof.NewTransportID).
func normalListener(t nvmeof.TransportID) (nvmeof.TransportID, error) {
	if t == (nvmeof.TransportID{}) {
		return t, fmt.Errorf("%w: listener_conf is required", ErrInvalidArgument)
	}
	n, err := nvmeof.NewTransportID(t.TrType, t.AdrFam, t.TrAddr, t.TrSvcID)
	if err != nil {
		return n, fmt.Errorf("%w: listener_conf: %w", ErrInvalidArgument, err)
	}
	return n, nil
}

// ParseInitiatorNQN validates a host NQN given by --initiator-nqn.
func ParseInitiatorNQN(s string) (string, error) {
	n, err := nvmeof.ParseHostNQN(s)
	if err != nil {
		return "", fmt.Errorf("%w: initiator_nqn: %w", ErrInvalidArgument, err)
	}
	return n.String(), nil
}

// decodeStrict decodes a user's JSON configuration with the one strict
// decoder (unknown, duplicate or case-variant keys, wrong types and
// trailing data are refused).
func decodeStrict(field, s string, v any) error {
	if err := strictjson.Decode([]byte(s), v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidArgument, field, err)
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

// ParsePDConf parses --pd-conf, the CLI's JSON for a PDConf, and returns
// it validated and in canonical form (PDConf.Canonical). Unknown,
// repeated or case-variant keys, wrong types and trailing data are
// refused. Errors wrap ErrInvalidArgument.
func ParsePDConf(s string) (PDConf, error) {
	var c PDConf
	if err := decodeStrict("pd_conf", s, &c); err != nil {
		return PDConf{}, err
	}
	return c.Canonical()
}

// Canonical validates c and returns it in canonical form: an NVMe PCIe
// address in lower case with its domain ("0000:01:00.0"), so that two PDs
// cannot name one disk differently. Errors wrap ErrInvalidArgument.
func (c PDConf) Canonical() (PDConf, error) {
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
		if !path.IsAbs(c.Filename) || path.Clean(c.Filename) != c.Filename || c.Filename == "/" {
			return bad("aio filename %q is not a clean absolute path (no '.', '..' or '//' parts)", c.Filename)
		}
		// The agent resolves symlinks and checks the result against its
		// --aio-dir allow-list; here only the spelling is checked.
		for _, r := range c.Filename {
			if r > unicode.MaxASCII || !unicode.IsPrint(r) {
				return bad("aio filename %q has character %q: use printable ASCII", c.Filename, r)
			}
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
	case "":
		return bad("type is required (malloc, aio or nvme)")
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

// Names of new objects. Lookups (Get, List, Modify, Delete) take any name
// ValidateName accepts, so objects created under older rules stay
// reachable; a create takes only names that cannot be confused:
//
//   - DA, exporter and PD names: 1-64 characters from [A-Za-z0-9._-]
//     that start with a letter or digit and do not end with '-' (so not
//     ".", ".." or a hidden-file name);
//   - DN and CN names: either such a name (up to 255 characters, no ':'),
//     or the agent's address as canonical "host:port": host an IPv4
//     address ("192.168.0.14"), a bracketed IPv6 address in RFC 5952 form
//     ("[fd00::14]") or a lower-case DNS name without a trailing dot;
//     port a decimal 1-65535 without leading zeros. Another spelling of an
//     address ("127.0.43.14:09720", "Host.Example:9720") is refused with
//     the canonical one in the message, so one agent cannot be registered
//     twice under two spellings.
func ValidateNewName(kind nvmeof.ResourceKind, name string) error {
	if err := ValidateName(kind, name); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s name %s: "+format, append([]any{ErrInvalidArgument, kind, strconv.Quote(name)}, a...)...)
	}
	if c := name[0]; !isAlnum(c) && c != '[' {
		return bad("must start with a letter or a digit")
	}
	if kind != nvmeof.ResourceDN && kind != nvmeof.ResourceCN || !strings.ContainsAny(name, ":[]") {
		return nil
	}
	canon, err := CanonicalNodeAddr(name)
	if err != nil {
		return bad("%v", err)
	}
	if canon != name {
		return bad("not in canonical form: write %s", canon)
	}
	return nil
}

// ValidateNodeAddress checks a node's Address: empty (the agent listens at
// the node's name), or a host:port in the canonical form ValidateNewName
// asks of names that are addresses.
func ValidateNodeAddress(addr string) error {
	if addr == "" {
		return nil
	}
	canon, err := CanonicalNodeAddr(addr)
	if err != nil {
		return fmt.Errorf("%w: address %s: %v", ErrInvalidArgument, strconv.Quote(addr), err)
	}
	if canon != addr {
		return fmt.Errorf("%w: address %s is not in canonical form: write %s", ErrInvalidArgument, strconv.Quote(addr), canon)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// CanonicalNodeAddr returns the canonical spelling of a node address
// host:port (see ValidateNewName), or why s is not one.
func CanonicalNodeAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("not a host:port address")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("port %q is not a decimal port 1-65535", port)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return "", fmt.Errorf("address %q has a zone", host)
		}
		if addr.IsUnspecified() || addr.IsMulticast() {
			return "", fmt.Errorf("address %q is not a unicast address", host)
		}
		return netip.AddrPortFrom(addr.Unmap(), uint16(p)).String(), nil
	}
	if strings.HasPrefix(s, "[") {
		return "", fmt.Errorf("%q is not an IPv6 address", host)
	}
	if looksIPv4(host) {
		// netip refuses leading zeros ("09720" ports are handled above);
		// say what the address would be.
		return "", fmt.Errorf("%q is not an IPv4 address in dotted decimal without leading zeros", host)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if reason := dnsNameProblem(name); reason != "" {
		return "", fmt.Errorf("host %q: %s", host, reason)
	}
	return net.JoinHostPort(name, strconv.FormatUint(p, 10)), nil
}

// looksIPv4 reports a host made of digits and dots only (an IPv4 address
// netip refused, such as "127.0.043.14").
func looksIPv4(h string) bool {
	return h != "" && strings.Trim(h, "0123456789.") == ""
}

// dnsNameProblem checks a lower-case DNS name (RFC 1123 host name).
func dnsNameProblem(name string) string {
	if name == "" || len(name) > 253 {
		return "a DNS name has 1-253 characters"
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "" || len(label) > 63:
			return "every DNS label has 1-63 characters"
		case label[0] == '-' || label[len(label)-1] == '-':
			return "a DNS label neither starts nor ends with '-'"
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("character %q is not in a DNS name", c)
			}
		}
	}
	return ""
}
