package nvmeof

import (
	"fmt"
	"net/netip"
	"strings"
)

// expTag is the tag of exporter NQNs: NQNPrefix + "exp-" + <da> + "-" + <exp>.
const expTag = "exp"

// ResourceKind names the kind of a user-chosen name for ValidateResourceName.
type ResourceKind string

// Kinds of user-named resources.
const (
	ResourceDA       ResourceKind = "disk array"
	ResourceExporter ResourceKind = "exporter"
	ResourcePD       ResourceKind = "physical disk"
	ResourceDN       ResourceKind = "disk node"
	ResourceCN       ResourceKind = "controller node"
	ResourceSnapshot ResourceKind = "snapshot"
	ResourceClone    ResourceKind = "clone"
)

// Length limits of user-chosen names.
const (
	MaxResourceNameLen = 64  // DA, exporter, PD, snapshot and clone names
	MaxNodeNameLen     = 255 // DN and CN names
)

// ValidateResourceName checks a user-chosen name:
//
//   - DA, exporter, PD, snapshot and clone names: 1-64 characters from [A-Za-z0-9._-], not
//     starting or ending with '-';
//   - DN and CN names, "host:port" in the tutorial (e.g.
//     "192.168.0.14:9720"): 1-255 characters from [A-Za-z0-9._:-], not
//     starting or ending with '-', or a bracketed IPv6 address with a port,
//     "[::1]:9720".
func ValidateResourceName(kind ResourceKind, name string) error {
	var reason string
	switch kind {
	case ResourceDA, ResourceExporter, ResourcePD, ResourceSnapshot, ResourceClone:
		reason = simpleNameProblem(name)
	case ResourceDN, ResourceCN:
		reason = nodeNameProblem(name)
	default:
		return fmt.Errorf("%w: unknown resource kind %q", ErrInvalidName, string(kind))
	}
	if reason != "" {
		return fmt.Errorf("%w: %s name %s: %s", ErrInvalidName, kind, quote(name), reason)
	}
	return nil
}

func simpleNameProblem(name string) string {
	if reason := lengthProblem(name, MaxResourceNameLen); reason != "" {
		return reason
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isNameChar(c) {
			return fmt.Sprintf("character %q not in [A-Za-z0-9._-]", c)
		}
	}
	return ""
}

func nodeNameProblem(name string) string {
	if reason := lengthProblem(name, MaxNodeNameLen); reason != "" {
		return reason
	}
	if strings.HasPrefix(name, "[") {
		host, port, ok := strings.Cut(name[1:], "]:")
		addr, err := netip.ParseAddr(host)
		if !ok || err != nil || !addr.Is6() || addr.Zone() != "" {
			return `a name starting with '[' must be "[<IPv6 address>]:<port>"`
		}
		if _, ok := parsePort(port); !ok {
			return fmt.Sprintf("port %q is not a decimal port 1-65535", port)
		}
		return ""
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isNameChar(c) && c != ':' {
			return fmt.Sprintf("character %q not in [A-Za-z0-9._:-]", c)
		}
	}
	return ""
}

func lengthProblem(name string, max int) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > max:
		return fmt.Sprintf("%d characters, more than %d", len(name), max)
	case name[0] == '-' || name[len(name)-1] == '-':
		return "starts or ends with '-'"
	}
	return ""
}

func isNameChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '.' || c == '_' || c == '-'
}

// ExpNQN returns the NQN of the subsystem that exports DA daName through
// exporter expName, in the tutorial's form:
//
//	nqn.2016-06.io.spdk:vda-exp-<da>-<exp>
//
// Both names must pass ValidateResourceName. Each '-' inside a name is
// doubled, so "da0"/"exp0" gives nqn.2016-06.io.spdk:vda-exp-da0-exp0 while
// ("a-b", "c") and ("a", "b-c") give vda-exp-a--b-c and vda-exp-a-b--c.
//
// Why this is injective (DecodeExpNQN is the inverse): let e(x) double every
// '-' of x. A maximal run of k hyphens in x becomes a run of 2k in e(x), and
// runs stay separate, so every run of hyphens in e(x) has even length. x does
// not start or end with '-', so neither does e(x). In e(da) + "-" + e(exp)
// the separator sits between a non-hyphen ending e(da) and a non-hyphen
// starting e(exp): it is a run of length exactly 1, the only odd run. The
// decoder splits at that run and halves the others, recovering (da, exp);
// equal NQNs therefore come from equal name pairs.
//
// The result is at most MaxNQNLen bytes or ExpNQN fails with ErrNameTooLong
// (names of up to 64 characters with few hyphens always fit).
func ExpNQN(daName, expName string) (NQN, error) {
	if err := ValidateResourceName(ResourceDA, daName); err != nil {
		return "", err
	}
	if err := ValidateResourceName(ResourceExporter, expName); err != nil {
		return "", err
	}
	s := NQNPrefix + expTag + "-" + escapeHyphens(daName) + "-" + escapeHyphens(expName)
	if len(s) > MaxNQNLen {
		return "", fmt.Errorf("%w: exporter NQN for disk array %q and exporter %q is %d bytes, more than %d",
			ErrNameTooLong, daName, expName, len(s), MaxNQNLen)
	}
	return NQN(s), nil
}

// DecodeExpNQN inverts ExpNQN: it returns the DA and exporter names an
// exporter NQN was made from, or an error wrapping ErrInvalidNQN if n is not
// exactly ExpNQN of some valid pair.
func DecodeExpNQN(n NQN) (daName, expName string, err error) {
	fail := func(reason string) (string, string, error) {
		return "", "", fmt.Errorf("%w %s: not a VDA exporter NQN: %s", ErrInvalidNQN, quote(string(n)), reason)
	}
	rest, ok := strings.CutPrefix(string(n), NQNPrefix+expTag+"-")
	if !ok {
		return fail("no " + NQNPrefix + expTag + "- prefix")
	}
	sep := -1
	for i := 0; i < len(rest); {
		if rest[i] != '-' {
			i++
			continue
		}
		j := i
		for j < len(rest) && rest[j] == '-' {
			j++
		}
		if (j-i)%2 == 1 {
			if j-i != 1 || sep >= 0 {
				return fail("hyphens do not separate exactly two names")
			}
			sep = i
		}
		i = j
	}
	if sep < 0 {
		return fail("no single '-' between the disk array and exporter names")
	}
	daName = strings.ReplaceAll(rest[:sep], "--", "-")
	expName = strings.ReplaceAll(rest[sep+1:], "--", "-")
	// Re-encoding rejects everything that is not canonical: bad characters,
	// names with leading or trailing '-', over-long NQNs.
	if again, err := ExpNQN(daName, expName); err != nil || again != n {
		return fail("names do not re-encode to it")
	}
	return daName, expName, nil
}

func escapeHyphens(s string) string { return strings.ReplaceAll(s, "-", "--") }
