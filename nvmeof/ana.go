package nvmeof

import (
	"fmt"
	"strings"
)

// ANAState is the Asymmetric Namespace Access state a listener reports for
// its namespaces. The values are the spellings SPDK's
// nvmf_subsystem_add_listener and nvmf_subsystem_listener_set_ana_state
// accept (rpc_ana_state_parse in lib/nvmf/nvmf_rpc.c, compared without
// regard to case).
type ANAState string

// The ANA states VDA sets: the primary controller's listener is optimized,
// a secondary's non-optimized (it proxies to the primary), and a fenced or
// demoted controller's inaccessible.
const (
	Optimized    ANAState = "optimized"
	NonOptimized ANAState = "non_optimized"
	Inaccessible ANAState = "inaccessible"
)

// ParseANAState parses s without regard to case, as SPDK does, and returns
// the lower-case state.
func ParseANAState(s string) (ANAState, error) {
	st := ANAState(strings.ToLower(s))
	switch st {
	case Optimized, NonOptimized, Inaccessible:
		return st, nil
	}
	return "", fmt.Errorf("%w %s: want %q, %q or %q", ErrInvalidANAState, quote(s),
		Optimized, NonOptimized, Inaccessible)
}

// Validate reports whether a is one of the three states, spelt in lower case.
func (a ANAState) Validate() error {
	switch a {
	case Optimized, NonOptimized, Inaccessible:
		return nil
	}
	return fmt.Errorf("%w %s: want %q, %q or %q", ErrInvalidANAState, quote(string(a)),
		Optimized, NonOptimized, Inaccessible)
}

// String returns the SPDK spelling.
func (a ANAState) String() string { return string(a) }
