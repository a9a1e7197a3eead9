package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/store"
)

// MembersPrefix is where monitors register themselves, one key each, bound to
// the monitor's lease.
const MembersPrefix = "/vda/monitors/"

// MembershipConfig configures a Membership.
type MembershipConfig struct {
	// ID names this monitor; unique among the cluster's monitors. Required.
	ID string
	// TTL is the lease TTL. A dead monitor's nodes are picked up by the
	// others within about TTL, and a monitor cut off from the store stops
	// driving its nodes within TTL of its last successful renewal. 0 means 5s.
	TTL time.Duration
	// Logger receives lifecycle logs; nil means silent.
	Logger hclog.Logger
	// Now is the clock used to judge the local lease deadline; nil means
	// time.Now.
	Now func() time.Time
}

// ErrNotMember is returned by Guard when this monitor cannot be sure its
// lease is still alive.
var ErrNotMember = errors.New("monitor: not a live member")

// Membership registers a monitor in the store and tells it which nodes it
// owns. Ownership is by rendezvous hashing over the live members, so a
// member joining or leaving moves only the nodes that hash to it.
//
// Safety: a monitor owns nothing unless its lease is certainly alive, judged
// locally as "the last successful renewal started less than TTL ago" (the
// store expires a lease no earlier than TTL after its last renewal). So a
// monitor cut off from the store stops driving nodes before another monitor
// can see its key vanish and take them.
type Membership struct {
	s   store.Store
	cfg MembershipConfig
	log hclog.Logger

	mu         sync.Mutex
	members    []string // sorted live member IDs, as last listed
	lease      store.LeaseID
	validUntil time.Time
	changed    chan struct{} // closed and replaced on every change
}

// NewMembership validates cfg and returns a Membership; Run registers it.
func NewMembership(s store.Store, cfg MembershipConfig) (*Membership, error) {
	if s == nil {
		return nil, errors.New("monitor: nil store")
	}
	if cfg.ID == "" || strings.ContainsAny(cfg.ID, "/\x00") {
		return nil, fmt.Errorf("monitor: invalid member id %q", cfg.ID)
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("monitor: negative TTL %v", cfg.TTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Membership{s: s, cfg: cfg, log: cfg.Logger.Named("membership").With("member", cfg.ID),
		changed: make(chan struct{})}, nil
}

// Run keeps this monitor registered until ctx ends, then revokes its lease
// so its nodes move at once. It returns ctx's error, or a store error that
// is not transient.
func (m *Membership) Run(ctx context.Context) error {
	tick := time.NewTicker(m.cfg.TTL / 4)
	defer tick.Stop()
	w, werr := m.s.Watch(ctx, MembersPrefix, 0)
	var events <-chan store.WatchResponse
	if werr == nil {
		defer w.Close()
		events = w.Events()
	}
	for {
		if err := m.renew(ctx); err != nil && ctx.Err() == nil {
			m.log.Debug("renewal failed", "error", err)
		}
		select {
		case <-ctx.Done():
			m.leave()
			return ctx.Err()
		case <-tick.C:
		case resp, ok := <-events:
			if !ok || resp.Err != nil {
				events = nil // fall back to the periodic listing
			}
		}
	}
}

// renew refreshes the lease (granting a new one if it was lost) and the
// member list.
func (m *Membership) renew(ctx context.Context) error {
	start := m.cfg.Now()
	m.mu.Lock()
	lease := m.lease
	m.mu.Unlock()
	err := store.ErrLeaseNotFound
	if lease != store.NoLease {
		err = m.s.KeepAlive(ctx, lease)
	}
	if errors.Is(err, store.ErrLeaseNotFound) {
		lease, err = m.register(ctx)
	}
	if err != nil {
		return err
	}
	res, err := m.s.List(ctx, MembersPrefix, store.ListOptions{})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(res.KVs))
	for _, kv := range res.KVs {
		ids = append(ids, strings.TrimPrefix(kv.Key, MembersPrefix))
	}
	slices.Sort(ids)
	m.mu.Lock()
	defer m.mu.Unlock()
	wasLive := m.cfg.Now().Before(m.validUntil)
	m.lease, m.validUntil = lease, start.Add(m.cfg.TTL)
	if !slices.Equal(ids, m.members) || !wasLive {
		m.log.Info("membership changed", "members", strings.Join(ids, ","))
		m.members = ids
		close(m.changed)
		m.changed = make(chan struct{})
	}
	return nil
}

func (m *Membership) register(ctx context.Context) (store.LeaseID, error) {
	lease, err := m.s.Grant(ctx, m.cfg.TTL)
	if err != nil {
		return store.NoLease, err
	}
	_, err = m.s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: MembersPrefix + m.cfg.ID,
		Value: []byte(m.cfg.ID), Lease: lease}}})
	if err != nil {
		return store.NoLease, err
	}
	m.log.Info("registered", "lease", lease)
	return lease, nil
}

func (m *Membership) leave() {
	m.mu.Lock()
	lease := m.lease
	m.lease, m.validUntil, m.members = store.NoLease, time.Time{}, nil
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	if lease != store.NoLease {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.TTL)
		defer cancel()
		_ = m.s.Revoke(ctx, lease) // best effort: the lease expires anyway
	}
}

// Members returns the live members as last listed (empty while this monitor
// is not certainly live).
func (m *Membership) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cfg.Now().Before(m.validUntil) {
		return nil
	}
	return slices.Clone(m.members)
}

// Owns reports whether this monitor drives node now.
func (m *Membership) Owns(node string) bool {
	return Owner(m.Members(), node) == m.cfg.ID
}

// Guard returns nil while this monitor's lease is certainly alive and it
// owns node; callers check it right before writing on the node's behalf.
func (m *Membership) Guard(node string) error {
	if !m.Owns(node) {
		return fmt.Errorf("%w: %s does not own node %s", ErrNotMember, m.cfg.ID, node)
	}
	return nil
}

// Changed returns a channel closed at the next membership change.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Owner returns which of members owns node by rendezvous (highest random
// weight) hashing; "" when there are no members.
func Owner(members []string, node string) string {
	var best string
	var bestW uint64
	for _, m := range members {
		h := sha256.Sum256([]byte(m + "\x00" + node))
		w := binary.BigEndian.Uint64(h[:8])
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}
