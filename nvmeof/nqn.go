package nvmeof

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors returned by this package. Each is wrapped with the offending value
// and a reason; test for them with errors.Is.
var (
	// ErrInvalidNQN reports a string that is not an NVMe Qualified Name.
	ErrInvalidNQN = errors.New("nvmeof: invalid NQN")
	// ErrInvalidTransportID reports a bad listener configuration or
	// transport ID field.
	ErrInvalidTransportID = errors.New("nvmeof: invalid transport ID")
	// ErrInvalidANAState reports an unknown ANA state.
	ErrInvalidANAState = errors.New("nvmeof: invalid ANA state")
	// ErrInvalidID reports a malformed stable object ID.
	ErrInvalidID = errors.New("nvmeof: invalid ID")
	// ErrInvalidName reports a malformed user-chosen resource name.
	ErrInvalidName = errors.New("nvmeof: invalid name")
	// ErrNameTooLong reports a derived name (NQN, lvol, ...) that would
	// exceed an NVMe or SPDK length limit.
	ErrNameTooLong = errors.New("nvmeof: name too long")
	// ErrControllerIndex reports a controller index whose controller-ID
	// range does not fit in SPDK's 1..65519.
	ErrControllerIndex = errors.New("nvmeof: controller index out of range")
)

// NQN limits and well-known NQNs from the NVMe base specification
// (section 4.5, "NVMe Qualified Names").
const (
	// MaxNQNLen is the maximum length of an NQN in bytes, excluding the
	// terminating NUL.
	MaxNQNLen = 223
	// DiscoveryNQN is the well-known NQN of a discovery subsystem.
	DiscoveryNQN NQN = "nqn.2014-08.org.nvmexpress.discovery"
	// UUIDNQNPrefix starts the UUID-based NQN form, which must be followed
	// by exactly one canonical 36-character UUID.
	UUIDNQNPrefix = "nqn.2014-08.org.nvmexpress:uuid:"

	maxDomainLabelLen = 63
	maxQuoted         = 300
)

// NQN is an NVMe Qualified Name that names a subsystem or a host. A value
// obtained from ParseNQN or from one of the name functions of this package is
// valid; a conversion NQN(s) is not checked.
type NQN string

// String returns the NQN as a plain string.
func (n NQN) String() string { return string(n) }

// ParseNQN validates s as an NQN in one of the three forms of the NVMe base
// specification and returns it unchanged:
//
//	nqn.yyyy-mm.<reverse domain>:<user string>
//	nqn.2014-08.org.nvmexpress:uuid:<8-4-4-4-12 hex uuid>
//	nqn.2014-08.org.nvmexpress.discovery
//
// s must be at most MaxNQNLen bytes of printable ASCII without spaces (the
// specification allows UTF-8; VDA takes the safe subset).
// yyyy-mm must be a month (01-12) of a year from 1970. Every label of the
// reverse domain starts with a letter, holds letters, digits and '-', does
// not end with '-' and is at most 63 bytes, as SPDK checks them
// (lib/nvmf/subsystem.c); the user string is not empty.
func ParseNQN(s string) (NQN, error) {
	if reason := nqnProblem(s); reason != "" {
		return "", fmt.Errorf("%w %s: %s", ErrInvalidNQN, quote(s), reason)
	}
	return NQN(s), nil
}

// Validate reports whether n is a valid NQN (see ParseNQN).
func (n NQN) Validate() error {
	_, err := ParseNQN(string(n))
	return err
}

// nqnProblem returns why s is not an NQN, or "" if it is one.
func nqnProblem(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > MaxNQNLen:
		return fmt.Sprintf("%d bytes, longer than %d", len(s), MaxNQNLen)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	// The specification allows any UTF-8; NQNs end up in SPDK's
	// configuration, on hosts' command lines and in logs and tables, so we
	// take printable ASCII without spaces only.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Sprintf("byte %d is %q: an NQN here is printable ASCII without spaces", i, c)
		}
	}
	switch {
	case s == string(DiscoveryNQN):
		return ""
	case strings.HasPrefix(s, UUIDNQNPrefix):
		if !isUUID(s[len(UUIDNQNPrefix):]) {
			return "the uuid form needs a canonical 8-4-4-4-12 hex UUID after " + UUIDNQNPrefix
		}
		return ""
	case !strings.HasPrefix(s, "nqn."):
		return `does not start with "nqn."`
	}
	rest := s[len("nqn."):]
	if len(rest) < len("yyyy-mm.") || rest[7] != '.' {
		return `no "yyyy-mm." date after "nqn."`
	}
	if reason := dateProblem(rest[:7]); reason != "" {
		return reason
	}
	rest = rest[len("yyyy-mm."):]
	domain, user, found := strings.Cut(rest, ":")
	if !found {
		return `no ':' between the reverse domain and the user string`
	}
	if user == "" {
		return "empty user string after ':'"
	}
	return domainProblem(domain)
}

// dateProblem checks the "yyyy-mm" of an NQN.
func dateProblem(d string) string {
	if d[4] != '-' || !allDigits(d[:4]) || !allDigits(d[5:]) {
		return fmt.Sprintf("date %q is not yyyy-mm", d)
	}
	year := atoiDigits(d[:4])
	month := atoiDigits(d[5:])
	if year < 1970 {
		return fmt.Sprintf("year %04d is before 1970", year)
	}
	if month < 1 || month > 12 {
		return fmt.Sprintf("month %02d is not 01-12", month)
	}
	return ""
}

// domainProblem checks the reverse domain name of an NQN.
func domainProblem(domain string) string {
	if domain == "" {
		return "empty reverse domain"
	}
	for label := range strings.SplitSeq(domain, ".") {
		switch {
		case label == "":
			return fmt.Sprintf("empty label in domain %q", domain)
		case len(label) > maxDomainLabelLen:
			return fmt.Sprintf("domain label %q longer than %d bytes", label, maxDomainLabelLen)
		case !isLetter(label[0]):
			return fmt.Sprintf("domain label %q does not start with a letter", label)
		case label[len(label)-1] == '-':
			return fmt.Sprintf("domain label %q ends with '-'", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isLetter(c) && !isDigit(c) && c != '-' {
				return fmt.Sprintf("domain label %q has character %q", label, c)
			}
		}
	}
	return ""
}

// isUUID reports whether s is a UUID in the 8-4-4-4-12 hex form (either case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isHex(c byte) bool    { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// atoiDigits converts a short string of ASCII digits; callers check allDigits.
func atoiDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// quote quotes s for an error message, shortening very long inputs so that
// a hostile value cannot blow up logs.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...(%d bytes)", s[:cut], len(s))
}

// ParseHostNQN parses a user-supplied host (initiator) NQN, such as the
// tutorial's nqn.2016-06.io.spdk:host0. Beyond ParseNQN it refuses the
// discovery NQN and every NQN starting with NQNPrefix: those are reserved for
// VDA's own subsystems and controller host NQNs, and a host allowed under a
// controller's host NQN could write to the controller's VDs behind the
// primary's back.
func ParseHostNQN(s string) (NQN, error) {
	n, err := ParseNQN(s)
	switch {
	case err != nil:
		return "", err
	case n == DiscoveryNQN:
		return "", fmt.Errorf("%w %s: the discovery NQN is not a host NQN", ErrInvalidNQN, quote(s))
	case strings.HasPrefix(s, NQNPrefix):
		return "", fmt.Errorf("%w %s: host NQNs starting with %q are reserved for VDA", ErrInvalidNQN, quote(s), NQNPrefix)
	}
	return n, nil
}
