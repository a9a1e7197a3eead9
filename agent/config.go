package agent

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// Role is what a node agent converges: a disk node or a controller node.
type Role string

// Roles.
const (
	RoleDN Role = "dn"
	RoleCN Role = "cn"
)

// Defaults of DefaultConfig.
const (
	DefaultListenAddr      = "127.0.0.1:9720"
	DefaultSyncTimeout     = 2 * time.Minute
	DefaultHealthTimeout   = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMaxInFlight bounds the objects a disk node works on at once:
	// real SPDK answers a round trip in about 8 ms and pipelines requests,
	// so independent objects must be in flight together (1,000 VDs built
	// in 0.68 s with 128, 1.14 s with 32: docs/BENCHMARKS.md, issue 18).
	DefaultMaxInFlight = 128
)

// Config configures an Agent. Zero durations and counts mean the defaults.
type Config struct {
	// Role is RoleDN or RoleCN (required). Requests for the other role fail
	// with InvalidArgument.
	Role Role
	// SPDKAddr is the SPDK JSON-RPC address (a unix socket path, or
	// host:port). Health probes SPDK on a connection of their own to it,
	// and Syncs use one to it too unless SPDK is set.
	SPDKAddr string
	// SPDK is the client of the local SPDK for Syncs (the agent does not
	// close it). Without SPDKAddr, Health shares it.
	SPDK *spdk.Client
	// Listener is where this node's NVMe-oF subsystems listen
	// (--listener-conf). Required, normalised (nvmeof.TransportID).
	Listener nvmeof.TransportID
	// ListenAddr is the host:port Run serves gRPC on.
	ListenAddr string
	// NodeID, when set, is this node's stable ID: requests for another
	// node_id fail with FailedPrecondition.
	NodeID string
	// StateDir, when set, keeps the last applied generation and epochs in
	// a file there, so a restarted agent still refuses stale monitors, and
	// the agent's ID (a UUID made on first start), so its monitor knows it
	// again. Without it the agent has a new ID in every process, and a
	// restarted agent is driven again only after its node is unbound.
	StateDir string
	// AllowedCallers, when not empty, lists the IP addresses or CIDR
	// prefixes (monitors) allowed to call the agent; others get
	// PermissionDenied. It is an extra layer over TLS (or over Insecure),
	// never a replacement: a source address proves nothing.
	AllowedCallers []string
	// TLS enables mutual TLS with roles: the agent's certificate must name
	// vda://agent/<node name> (it then refuses desired state for any other
	// node), and callers must present a certificate signed by TLS.CAFile
	// whose role Policy allows (Sync: monitors only).
	TLS mtls.Config
	// Insecure runs without TLS: any caller that reaches ListenAddr can
	// change the node. New refuses a Config with neither TLS nor Insecure.
	Insecure bool
	// Logger gets lifecycle and per-RPC logs; nil is silent.
	Logger hclog.Logger
	// SyncTimeout bounds one Sync, including hung SPDK calls.
	SyncTimeout time.Duration
	// HealthTimeout bounds the SPDK probe of one Health; the caller's
	// deadline bounds it too (Health answers DeadlineExceeded just before
	// it). Longer than a monitor's probe timeout, so that a slow but
	// answering SPDK counts as alive for as long as the monitor waits.
	HealthTimeout time.Duration
	// ShutdownTimeout bounds the graceful stop of Serve; RPCs still running
	// after it are cancelled.
	ShutdownTimeout time.Duration
	// MaxInFlight bounds the objects worked on concurrently in one Sync.
	MaxInFlight int
	// AioDirs (disk nodes) lists the directories, or single block devices,
	// where aio PDs may live (--aio-dir): a PD's file, symlinks resolved,
	// must be a regular file or a block device inside one of them. Empty:
	// every aio PD is refused, with a message saying how to allow them. A
	// file must also be blank (its first MiB all zeros) or hold the PD's
	// own lvstore, unless the PD was created with force.
	AioDirs []string
	// LvstoreLabels reads lvstore labels in formats beyond SPDK's (which
	// is always read): the fake SPDK's (spdk/spdktest/blockdev.LvstoreName)
	// where the agent drives one.
	LvstoreLabels []LvstoreLabelReader
	// Metrics, when set, observes every Sync and, when the agent makes its
	// SPDK client (SPDK nil), every SPDK call of the Syncs (package metrics
	// implements it over Prometheus); nil means none. An embedder passing
	// SPDK observes its calls with spdk.WithObserver.
	Metrics Metrics
}

// Metrics observes an agent. Calls must not block for long.
type Metrics interface {
	// Synced: one Sync was applied in d, having issued rpcs SPDK calls (0
	// when not observed), or (err not nil) was refused because SPDK did not
	// answer.
	Synced(d time.Duration, rpcs int, err error)
	// SPDKCall: one SPDK JSON-RPC call ended; err is an *spdk.Error for
	// an SPDK error reply.
	SPDKCall(method string, d time.Duration, err error)
}

// DefaultConfig returns a Config for role with the defaults filled in. The
// caller still sets SPDKAddr (or SPDK) and Listener.
func DefaultConfig(role Role) Config {
	return Config{
		Role:            role,
		ListenAddr:      DefaultListenAddr,
		SyncTimeout:     DefaultSyncTimeout,
		HealthTimeout:   DefaultHealthTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		MaxInFlight:     DefaultMaxInFlight,
	}
}

// withDefaults fills zero values and validates the result.
func (c Config) withDefaults() (Config, error) {
	if c.Role != RoleDN && c.Role != RoleCN {
		return c, fmt.Errorf("%w: role %q is not %q or %q", ErrConfig, c.Role, RoleDN, RoleCN)
	}
	if c.SPDK == nil || c.SPDKAddr != "" {
		if _, _, err := spdk.ParseAddress(c.SPDKAddr); err != nil {
			return c, fmt.Errorf("%w: spdk address: %w", ErrConfig, err)
		}
	}
	if err := c.Listener.Validate(); err != nil {
		return c, fmt.Errorf("%w: listener: %w", ErrConfig, err)
	}
	if c.NodeID != "" {
		if err := nvmeof.ValidateID(c.NodeID); err != nil {
			return c, fmt.Errorf("%w: node id: %w", ErrConfig, err)
		}
	}
	if _, err := parseAllowList(c.AllowedCallers); err != nil {
		return c, err
	}
	if err := c.TLS.Validate(); err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !c.TLS.Enabled() && !c.Insecure {
		return c, fmt.Errorf("%w: no TLS: set TLS (mutual TLS with roles: only monitors may Sync), "+
			"or Insecure to let any caller that reaches the agent drive it", ErrConfig)
	}
	for _, d := range []*time.Duration{&c.SyncTimeout, &c.HealthTimeout, &c.ShutdownTimeout} {
		if *d < 0 {
			return c, fmt.Errorf("%w: negative timeout %v", ErrConfig, *d)
		}
	}
	for _, d := range c.AioDirs {
		if !filepath.IsAbs(d) || filepath.Clean(d) != d {
			return c, fmt.Errorf("%w: aio dir %q is not a clean absolute path", ErrConfig, d)
		}
	}
	if c.MaxInFlight < 0 {
		return c, fmt.Errorf("%w: negative MaxInFlight %d", ErrConfig, c.MaxInFlight)
	}
	def := DefaultConfig(c.Role)
	c.SyncTimeout = orDefault(c.SyncTimeout, def.SyncTimeout)
	c.HealthTimeout = orDefault(c.HealthTimeout, def.HealthTimeout)
	c.ShutdownTimeout = orDefault(c.ShutdownTimeout, def.ShutdownTimeout)
	if c.MaxInFlight == 0 {
		c.MaxInFlight = def.MaxInFlight
	}
	if c.ListenAddr == "" {
		c.ListenAddr = def.ListenAddr
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return c, fmt.Errorf("%w: listen address: %w", ErrConfig, err)
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// parseAllowList parses AllowedCallers: IP addresses and CIDR prefixes.
func parseAllowList(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%w: allowed caller %q is not an IP address or CIDR prefix", ErrConfig, e)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
