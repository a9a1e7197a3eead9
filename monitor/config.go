package monitor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/store"
)

// ErrConfig is wrapped by the errors of an invalid Config.
var ErrConfig = errors.New("monitor: invalid config")

// Config configures a Monitor. Zero durations and counts mean the
// DefaultConfig value.
type Config struct {
	// Store holds the cluster (required).
	Store store.Store
	// ID names this monitor among the cluster's monitors (required).
	ID string
	// LeaseTTL is the membership lease TTL: a dead monitor's nodes are
	// picked up by the others within about that long.
	LeaseTTL time.Duration
	// ResyncInterval is how often every owned node is pushed its state
	// even if nothing changed (drift repair).
	ResyncInterval time.Duration
	// RoundInterval is the least time between the starts of two rounds
	// (snapshot, plan, dispatch): the changes that arrive meanwhile are
	// planned and pushed together, so a burst of creates costs a few
	// rounds, each reading the whole cluster, and a few pushes, rather than
	// one of each per change. A round after a quiet spell starts at once.
	RoundInterval time.Duration
	// SyncTimeout bounds one Sync call to an agent.
	SyncTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff between
	// failed pushes to one node.
	BackoffMin, BackoffMax time.Duration
	// PhaseTimeout bounds how long a failover waits for the disk nodes
	// (the fence) before pushing the new primaries, and for the new
	// primaries before re-pointing the other secondaries. Waiting is an
	// optimisation: the disk nodes admit only the new primary, so order
	// is not what keeps a DA single-writer.
	PhaseTimeout time.Duration
	// Failover says how often nodes are probed, when one is failed (fast
	// on refusals, after Failover.SlowTimeout without an answer on
	// timeouts) and how long one that failed is held down.
	Failover failover.Config
	// HealthTimeout bounds one Health probe. One probe is in flight at a
	// time and may take this long: an answer that comes late still proves
	// the node alive. It must not exceed Failover.SlowTimeout; 0 means half
	// of it, so that a second probe fits before a silent node is failed.
	HealthTimeout time.Duration
	// BusyGrace: while a Sync to a node is in flight and younger than
	// this, a probe that times out is not evidence at all (a refused or
	// broken connection still counts). 0, the default, means none: agents
	// answer Health on an SPDK connection of their own, timeouts fail a
	// node only after Failover.SlowTimeout without an answer, and a Sync
	// that returns counts as an answer, so a node busy with promotions is
	// not failed for being busy; a grace would only add to how long a node
	// that hangs mid-Sync (a stopped agent or spdk_tgt) keeps its arrays
	// unavailable: SlowTimeout plus BusyGrace. At most SyncTimeout.
	BusyGrace time.Duration
	// TLS, when enabled, is the client side of mutual TLS to the agents:
	// its certificate must name vda://monitor/<name>, and the agent of node
	// X must present a certificate naming vda://agent/X, so an address
	// that reaches another node's agent fails the handshake.
	TLS mtls.Config
	// Insecure talks to the agents in plaintext: nothing proves that a
	// node's address reaches that node's agent but the agent ID it is
	// bound to. New refuses a Config with neither TLS nor Insecure.
	Insecure bool
	// DialOptions are added to every agent connection (after the
	// transport credentials, so they may override them).
	DialOptions []grpc.DialOption
	// Transport reaches the agents; nil means GRPC with TLS (or plaintext
	// with Insecure) and DialOptions, which configure only that default:
	// New refuses them beside a Transport. InProcess drives agents in this
	// process.
	Transport Transport
	// StatusConcurrency bounds the status writes in flight per node.
	StatusConcurrency int
	// Logger receives the monitor's logs; nil means silent.
	Logger hclog.Logger
	// Now is the clock of health observations and status times; nil
	// means time.Now.
	Now func() time.Time
	// Metrics, when set, observes pushes, probes, health transitions and
	// failovers (package metrics implements it over Prometheus); nil means
	// none.
	Metrics Metrics
}

// Metrics observes a monitor. Calls come from many goroutines and must not
// block for long.
type Metrics interface {
	// Pushed: one Sync of node (its name) ended after d; err is nil when
	// the agent applied it.
	Pushed(node string, d time.Duration, err error)
	// Probed: one health probe of node (its name) ended; miss is "" when
	// the agent answered, else "refused" or "silent".
	Probed(node string, miss string)
	// NodeTransition: the health of the node with ID id changed.
	NodeTransition(id string, from, to failover.State)
	// FailedOver: arrays whose primary was on the failed node with ID id
	// were committed to new primaries.
	FailedOver(id string, arrays int)
	// Cluster: what the monitor's last round saw.
	Cluster(ClusterStats)
}

// nopMetrics is the Metrics of a Config without one.
type nopMetrics struct{}

func (nopMetrics) Pushed(string, time.Duration, error)                   {}
func (nopMetrics) Probed(string, string)                                 {}
func (nopMetrics) NodeTransition(string, failover.State, failover.State) {}
func (nopMetrics) FailedOver(string, int)                                {}
func (nopMetrics) Cluster(ClusterStats)                                  {}

// DefaultConfig returns the defaults for monitor id over s: 5 s lease,
// 30 s resync, rounds at least 50 ms apart, 2 min sync timeout (the agent's own: a Sync that cannot
// finish in time loses its progress), no busy grace, 100 ms-5 s backoff,
// 2 s phases and failover.DefaultConfig (probes every 400 ms, a node failed
// after 3 refusals in 1.5 s or 5 s without an answer, held down 10 s); a
// probe may take half the slow timeout, 2.5 s.
func DefaultConfig(s store.Store, id string) Config {
	return Config{Store: s, ID: id, LeaseTTL: 5 * time.Second, ResyncInterval: 30 * time.Second, RoundInterval: 50 * time.Millisecond,
		SyncTimeout: 2 * time.Minute, BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second,
		PhaseTimeout: 2 * time.Second, Failover: failover.DefaultConfig(),
		StatusConcurrency: 32}
}

// agentTransport returns Transport, or the default GRPC transport: with TLS,
// the client side of mutual TLS, whose certificate must name a monitor.
func (c Config) agentTransport(log hclog.Logger) (Transport, error) {
	if c.Transport != nil {
		return c.Transport, nil
	}
	g := GRPC{DialOptions: c.DialOptions}
	if !c.TLS.Enabled() {
		log.Warn("INSECURE: no TLS: nothing proves the agents are who they say, nor keeps others from driving them")
		return g, nil
	}
	id, err := c.TLS.Identity()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if id.Role != mtls.RoleMonitor {
		return nil, fmt.Errorf("%w: the certificate names %s, not a monitor (vda://monitor/<name>)", ErrConfig, id)
	}
	if g.TLS, err = c.TLS.ClientTLS(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return g, nil
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Store, c.ID)
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.LeaseTTL, d.LeaseTTL)
	set(&c.ResyncInterval, d.ResyncInterval)
	set(&c.RoundInterval, d.RoundInterval)
	set(&c.SyncTimeout, d.SyncTimeout)
	set(&c.BackoffMin, d.BackoffMin)
	set(&c.BackoffMax, d.BackoffMax)
	set(&c.PhaseTimeout, d.PhaseTimeout)
	c.BusyGrace = min(c.BusyGrace, c.SyncTimeout) // 0: none
	if c.Failover == (failover.Config{}) {
		c.Failover = d.Failover
	}
	set(&c.HealthTimeout, c.Failover.SlowTimeout/2)
	if c.StatusConcurrency == 0 {
		c.StatusConcurrency = d.StatusConcurrency
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	return c
}

// Validate reports whether c's settings (after defaults) are valid. It
// needs nothing else: a binary checks its flags with it before it opens
// the store; New also requires the Store.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.ID == "" || strings.ContainsAny(c.ID, "/\x00") {
		errs = append(errs, fmt.Errorf("invalid monitor id %q (required, without '/')", c.ID))
	}
	for name, d := range map[string]time.Duration{"lease TTL": c.LeaseTTL, "resync interval": c.ResyncInterval, "round interval": c.RoundInterval,
		"sync timeout": c.SyncTimeout, "minimum backoff": c.BackoffMin, "phase timeout": c.PhaseTimeout,
		"health timeout": c.HealthTimeout, "busy grace": c.BusyGrace} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", name, d))
		}
	}
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("maximum backoff %v is below the minimum %v", c.BackoffMax, c.BackoffMin))
	}
	if c.StatusConcurrency < 0 {
		errs = append(errs, fmt.Errorf("status concurrency %d is negative", c.StatusConcurrency))
	}
	if err := c.Failover.Validate(); err != nil {
		errs = append(errs, err)
	} else if c.HealthTimeout > c.Failover.SlowTimeout {
		errs = append(errs, fmt.Errorf("health timeout %v exceeds the slow timeout %v: a probe could not succeed "+
			"before the node is failed for silence", c.HealthTimeout, c.Failover.SlowTimeout))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Transport != nil:
		if c.TLS.Enabled() || c.Insecure || len(c.DialOptions) > 0 {
			errs = append(errs, errors.New("a Transport is set: TLS, Insecure and DialOptions configure the default "+
				"transport only; give the Transport its own (e.g. GRPC{TLS: ...})"))
		}
	case !c.TLS.Enabled() && !c.Insecure:
		errs = append(errs, errors.New("no TLS: set TLS (mutual TLS with roles), or Insecure to drive agents in plaintext"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
