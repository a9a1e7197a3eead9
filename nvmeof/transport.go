package nvmeof

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vda-io/vda/internal/strictjson"
)

// Transport types and address families, in the lower-case spelling this
// package normalises to (SPDK accepts any case and reports upper case).
const (
	TrTypeTCP  = "tcp"
	TrTypeRDMA = "rdma"
	AdrFamIPv4 = "ipv4"
	AdrFamIPv6 = "ipv6"
)

// Listener configuration keys, as in the tutorial's --listener-conf.
const (
	keyTrType  = "trtype"
	keyAdrFam  = "adrfam"
	keyTrAddr  = "traddr"
	keyTrSvcID = "trsvcid"
)

// maxListenerConfLen bounds the JSON accepted by ParseListenerConf; a real
// listener configuration is well under 200 bytes.
const maxListenerConfLen = 4096

// TransportID is the address of an NVMe-oF listener: what a disk or
// controller node listens on and what initiators connect to. A valid
// TransportID is normalised: TrType is "tcp" or "rdma", AdrFam "ipv4" or
// "ipv6", TrAddr a literal IP of that family in its canonical text form,
// and TrSvcID a decimal port 1..65535 without leading zeros.
type TransportID struct {
	TrType  string
	AdrFam  string
	TrAddr  string
	TrSvcID string
}

// NewTransportID normalises and validates the four fields, accepting any case
// for trtype and adrfam (SPDK reports "TCP" and "IPv4"). An empty adrfam is
// inferred from traddr. IPv6 addresses are rewritten to their canonical form
// (RFC 5952), so equal addresses compare equal.
func NewTransportID(trtype, adrfam, traddr, trsvcid string) (TransportID, error) {
	id := TransportID{
		TrType:  strings.ToLower(trtype),
		AdrFam:  strings.ToLower(adrfam),
		TrAddr:  traddr,
		TrSvcID: trsvcid,
	}
	if id.TrType != TrTypeTCP && id.TrType != TrTypeRDMA {
		return TransportID{}, tidError(keyTrType, trtype, `must be "tcp" or "rdma"`)
	}
	addr, err := netip.ParseAddr(traddr)
	if err != nil || addr.Zone() != "" {
		return TransportID{}, tidError(keyTrAddr, traddr, "must be a literal IP address without a zone")
	}
	if id.AdrFam == "" {
		id.AdrFam = AdrFamIPv6
		if addr.Is4() {
			id.AdrFam = AdrFamIPv4
		}
	}
	switch id.AdrFam {
	case AdrFamIPv4:
		if !addr.Is4() {
			return TransportID{}, tidError(keyTrAddr, traddr, "is not an IPv4 address (adrfam is ipv4)")
		}
	case AdrFamIPv6:
		if !addr.Is6() {
			return TransportID{}, tidError(keyTrAddr, traddr, "is not an IPv6 address (adrfam is ipv6)")
		}
	default:
		return TransportID{}, tidError(keyAdrFam, adrfam, `must be "ipv4" or "ipv6"`)
	}
	if addr.IsUnspecified() || addr.IsMulticast() {
		return TransportID{}, tidError(keyTrAddr, traddr, "must be a unicast address initiators can connect to")
	}
	id.TrAddr = addr.String()
	if _, ok := parsePort(trsvcid); !ok {
		return TransportID{}, tidError(keyTrSvcID, trsvcid, "must be a decimal port 1-65535 without leading zeros")
	}
	return id, nil
}

// Validate reports whether t is valid and normalised (see TransportID).
func (t TransportID) Validate() error {
	n, err := NewTransportID(t.TrType, t.AdrFam, t.TrAddr, t.TrSvcID)
	if err != nil {
		return err
	}
	if n != t {
		return fmt.Errorf("%w: %s is not normalised (want %s)", ErrInvalidTransportID, t.JSON(), n.JSON())
	}
	return nil
}

// String returns "tcp 192.168.0.14:4420" or "tcp [fd00::1]:4420".
func (t TransportID) String() string {
	addr, err := netip.ParseAddr(t.TrAddr)
	port, ok := parsePort(t.TrSvcID)
	if err != nil || !ok {
		return t.TrType + " " + t.TrAddr + ":" + t.TrSvcID
	}
	return t.TrType + " " + netip.AddrPortFrom(addr, port).String()
}

// JSON returns the canonical listener configuration, with the keys in the
// tutorial's order:
//
//	{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}
func (t TransportID) JSON() string {
	var b strings.Builder
	b.WriteString(`{"trtype":`)
	b.WriteString(jsonString(t.TrType))
	b.WriteString(`,"traddr":`)
	b.WriteString(jsonString(t.TrAddr))
	b.WriteString(`,"adrfam":`)
	b.WriteString(jsonString(t.AdrFam))
	b.WriteString(`,"trsvcid":`)
	b.WriteString(jsonString(t.TrSvcID))
	b.WriteString("}")
	return b.String()
}

// MarshalText returns the canonical listener configuration (JSON), or
// nothing for the zero TransportID: as a struct field, a TransportID
// encodes in JSON as the string the CLI's --listener-conf flags take, which
// is how VDA stores a node's listener.
func (t TransportID) MarshalText() ([]byte, error) {
	if t == (TransportID{}) {
		return nil, nil
	}
	return []byte(t.JSON()), nil
}

// UnmarshalText parses a listener configuration as ParseListenerConf
// does; empty text is the zero TransportID.
func (t *TransportID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*t = TransportID{}
		return nil
	}
	id, err := ParseListenerConf(string(text))
	if err != nil {
		return err
	}
	*t = id
	return nil
}

// ParseListenerConf parses a node's listener configuration, a JSON object
// with the string fields trtype, traddr, adrfam and trsvcid:
//
//	{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}
//
// Keys are matched exactly (lower case); unknown or repeated keys, non-string
// values and trailing data are refused. trtype, traddr and trsvcid are
// required. adrfam is optional: when absent it is inferred from traddr
// (SPDK itself would assume ipv4, which is wrong for an IPv6 traddr), and
// JSON always writes it back. Values are normalised as by NewTransportID.
func ParseListenerConf(jsonText string) (TransportID, error) {
	if len(jsonText) > maxListenerConfLen {
		return TransportID{}, fmt.Errorf("%w: listener configuration is %d bytes, more than %d",
			ErrInvalidTransportID, len(jsonText), maxListenerConfLen)
	}
	var c struct {
		TrType  *string `json:"trtype"`
		AdrFam  *string `json:"adrfam"`
		TrAddr  *string `json:"traddr"`
		TrSvcID *string `json:"trsvcid"`
	}
	if err := strictjson.Decode([]byte(jsonText), &c); err != nil {
		return TransportID{}, fmt.Errorf("%w: listener configuration %s: %w", ErrInvalidTransportID, quote(jsonText), err)
	}
	for _, f := range []struct {
		key string
		v   *string
	}{{keyTrType, c.TrType}, {keyTrAddr, c.TrAddr}, {keyTrSvcID, c.TrSvcID}} {
		if f.v == nil {
			return TransportID{}, fmt.Errorf("%w: listener configuration: missing field %q", ErrInvalidTransportID, f.key)
		}
	}
	adrfam := ""
	if c.AdrFam != nil {
		adrfam = *c.AdrFam
	}
	return NewTransportID(*c.TrType, adrfam, *c.TrAddr, *c.TrSvcID)
}

// parsePort parses a canonical decimal port 1..65535.
func parsePort(s string) (uint16, bool) {
	if !allDigits(s) || len(s) > 5 || s[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint16(n), true
}

func tidError(field, value, reason string) error {
	return fmt.Errorf("%w: %s %s %s", ErrInvalidTransportID, field, quote(value), reason)
}

// jsonString encodes s as a JSON string; it cannot fail for a string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
