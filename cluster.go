package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// List paging limits.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Config configures a Cluster.
type Config struct {
	// Store holds the cluster state (required). Several Clusters, in one
	// process or many, may share one Store.
	Store store.Store
	// Logger receives debug logs; nil is silent.
	Logger hclog.Logger
	// Placer chooses a new DA's PDs and CNs; nil means DefaultPlacer.
	//
	// DefaultPlacer (and PolicyPlacer{alloc.Default{}}) is shown a sample
	// of the candidates that is bounded whatever the cluster's size: of
	// each location, the disk nodes whose emptiest PDs are emptiest, with
	// those PDs, and the least-loaded CNs (every candidate only if the
	// sample cannot hold the DA). Any other Placer is shown every DN, PD
	// and CN on every create, from memory but at a cost that grows with
	// the cluster (and under a lock that serialises the creates of one
	// Cluster while it builds them).
	Placer Placer
	// MaxPlacementAttempts bounds how often CreateDiskArray re-reads the
	// candidates after a concurrent change (0 means 100).
	MaxPlacementAttempts int
	// MaxMallocPDBytes bounds the size of a malloc PD, which lives in the
	// disk node's RAM: a typo must not ask a node for a terabyte (0 means
	// DefaultMaxMallocPDBytes; at most MaxPDBytes).
	MaxMallocPDBytes uint64
	// PlacementAffinity, when not empty, names this Cluster among several
	// that create DAs on one store at the same time (vda-portal sets one
	// from its host name and address); unique per Cluster, at most
	// MaxPlacementAffinityBytes, no '/'. The Clusters with one register
	// under PrefixPlacer (a key bound to a lease while the Cluster's
	// candidate cache runs) and share the CNs out among themselves: each
	// prefers its own share, ranking the others' CNs as if they hosted an
	// eighth more controllers (alloc.Node.Avoid), so their creates stop
	// choosing the same least-loaded CNs and losing their transactions to
	// each other. This only orders CNs hosting at least alloc.AvoidMinLoad
	// controllers: below that, alone on the store, and with the default
	// empty value, placement is exactly as without it. It is a
	// preference, deterministic for given registrations and CNs, never a
	// guard (see placers.go).
	PlacementAffinity string
}

// DefaultMaxMallocPDBytes is the default bound of a malloc PD (64 GiB).
const DefaultMaxMallocPDBytes = 64 << 30

// DefaultConfig returns a Config for s.
func DefaultConfig(s store.Store) Config { return Config{Store: s} }

// Cluster is the VDA API over a Store: what the portal serves, usable
// directly by embedders. The store is its only authority, so any number of
// Clusters may serve the same Store concurrently. The one thing it keeps
// is a cache of the placement candidates (CreateDiskArray), fed by a store
// watch that Close stops.
type Cluster struct {
	s         store.Store
	log       hclog.Logger
	placer    Placer
	attempts  int
	maxMalloc uint64
	affinity  string

	cacheMu sync.Mutex
	cache   *candCache // nil until the first CreateDiskArray

	listeners listenerMemo // CNs' listeners, parsed (describePorts)
}

// New returns a Cluster for cfg.
func New(cfg Config) (*Cluster, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: config: no store", ErrInvalidArgument)
	}
	if cfg.MaxMallocPDBytes > MaxPDBytes {
		return nil, fmt.Errorf("%w: config: MaxMallocPDBytes %d is more than %d", ErrInvalidArgument, cfg.MaxMallocPDBytes, uint64(MaxPDBytes))
	}
	if err := validateAffinity(cfg.PlacementAffinity); err != nil {
		return nil, err
	}
	c := &Cluster{s: cfg.Store, log: cfg.Logger, placer: cfg.Placer, attempts: cfg.MaxPlacementAttempts,
		maxMalloc: cfg.MaxMallocPDBytes, affinity: cfg.PlacementAffinity}
	if c.maxMalloc == 0 {
		c.maxMalloc = DefaultMaxMallocPDBytes
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if c.placer == nil {
		c.placer = DefaultPlacer{}
	}
	if c.attempts <= 0 {
		c.attempts = 100
	}
	return c, nil
}

// Page selects one page of a List: at most Limit items (0 means
// DefaultPageSize) after Token, the NextToken of the previous page. A
// token is the position of the last item listed: its name ("dn/pd" or
// "da/exp" when listing the PDs or exporters of every node or array). A
// token that cannot be such a position is refused (InvalidArgument).
type Page struct {
	Limit int
	Token string
}

// tokenNames checks a page token made of the names of kinds, joined by
// '/' (no name contains one).
func tokenNames(kinds ...nvmeof.ResourceKind) func(string) error {
	return func(tok string) error {
		parts := strings.Split(tok, "/")
		if len(parts) != len(kinds) {
			return fmt.Errorf("%w: bad page token %s: not a position in this list (pass next_page_token back as it came)",
				ErrInvalidArgument, strconv.Quote(tok))
		}
		for i, k := range kinds {
			if nvmeof.ValidateResourceName(k, parts[i]) != nil {
				return fmt.Errorf("%w: bad page token %s: not a position in this list (pass next_page_token back as it came)",
					ErrInvalidArgument, strconv.Quote(tok))
			}
		}
		return nil
	}
}

func (p Page) options(prefix string, checkToken func(string) error) (store.ListOptions, error) {
	if p.Limit < 0 || p.Limit > MaxPageSize {
		return store.ListOptions{}, fmt.Errorf("%w: page limit %d is not in 0..%d", ErrInvalidArgument, p.Limit, MaxPageSize)
	}
	opt := store.ListOptions{Limit: p.Limit}
	if opt.Limit == 0 {
		opt.Limit = DefaultPageSize
	}
	if p.Token != "" {
		if len(p.Token) > store.MaxKeyBytes-len(prefix) || strings.ContainsRune(p.Token, 0) {
			return store.ListOptions{}, fmt.Errorf("%w: bad page token", ErrInvalidArgument)
		}
		if err := checkToken(p.Token); err != nil {
			return store.ListOptions{}, err
		}
		opt.StartAfter = prefix + p.Token
	}
	return opt, nil
}

// listJSON lists one page of the objects under prefix, each with its status.
func listJSON[T any](ctx context.Context, c *Cluster, prefix string, page Page, checkToken func(string) error,
	status func(*T) *Status) ([]T, string, error) {
	opt, err := page.options(prefix, checkToken)
	if err != nil {
		return nil, "", err
	}
	res, err := c.s.List(ctx, prefix, opt)
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(res.KVs))
	for _, kv := range res.KVs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, "", fmt.Errorf("vda: decode %s: %w", kv.Key, err)
		}
		if *status(&v), err = c.readStatus(ctx, kv.Key); err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	next := ""
	if res.More && len(res.KVs) > 0 {
		next = strings.TrimPrefix(res.KVs[len(res.KVs)-1].Key, prefix)
	}
	return out, next, nil
}

// children names a kind of object stored under a parent (PDs under a DN;
// exporters, snapshots and clones under a DA) for listUnder.
type children struct {
	all          string // the prefix of every parent's
	parent, kind nvmeof.ResourceKind
	parentKey    func(string) string
	parentWhat   func(string) string
	under        func(string) string // the prefix of one parent's
}

// listUnder lists one page of the objects of parent, or of every parent
// if parent is "" (a parent that does not exist is NotFound).
func listUnder[T any](ctx context.Context, c *Cluster, k children, parent string, page Page,
	status func(*T) *Status) ([]T, string, error) {
	prefix, tok := k.all, tokenNames(k.parent, k.kind)
	if parent != "" {
		if err := ValidateName(k.parent, parent); err != nil {
			return nil, "", err
		}
		if err := c.exists(ctx, k.parentKey(parent), k.parentWhat(parent)); err != nil {
			return nil, "", err
		}
		prefix, tok = k.under(parent), tokenNames(k.kind)
	}
	return listJSON(ctx, c, prefix, page, tok, status)
}

// getJSON reads the object at key with its status; what names it in errors.
func getJSON[T any](ctx context.Context, c *Cluster, key, what string, status func(*T) *Status) (T, error) {
	v, err := getSpecJSON[T](ctx, c, key, what)
	if err != nil {
		return v, err
	}
	*status(&v), err = c.readStatus(ctx, key)
	return v, err
}

// getSpecJSON reads the object at key without its status.
func getSpecJSON[T any](ctx context.Context, c *Cluster, key, what string) (T, error) {
	var v T
	kv, err := c.s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return v, fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, fmt.Errorf("vda: decode %s: %w", key, err)
	}
	return v, nil
}

func (c *Cluster) readStatus(ctx context.Context, specKey string) (Status, error) {
	var st Status
	kv, err := c.s.Get(ctx, KeyStatus(specKey))
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		return st, fmt.Errorf("vda: decode status of %s: %w", specKey, err)
	}
	return st, nil
}

// exists fails with ErrNotFound (naming what) if key is absent.
func (c *Cluster) exists(ctx context.Context, key, what string) error {
	_, err := c.s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return err
}

// txGet reads and decodes key inside a transaction (guarding it).
func txGet[T any](tx *store.Tx, key, what string) (T, error) {
	var v T
	kv, err := tx.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return v, fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, fmt.Errorf("vda: decode %s: %w", key, err)
	}
	return v, nil
}

// txLookup reads and decodes key inside a transaction (guarding it);
// found is false if it is absent.
func txLookup[T any](tx *store.Tx, key string) (v T, found bool, err error) {
	kv, err := tx.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, true, fmt.Errorf("vda: decode %s: %w", key, err)
	}
	return v, true, nil
}

// field is one field of a create request and of the object that already
// exists under its name.
type field struct {
	name       string
	have, want any
}

// sameSpec makes creates idempotent: a create whose object exists already
// succeeds if every field is what the request asks (a client retrying
// after a lost reply gets the object), and fails with ErrAlreadyExists
// saying what differs otherwise.
func sameSpec(what string, fields ...field) error {
	var diffs []string
	for _, f := range fields {
		if f.have != f.want {
			diffs = append(diffs, fmt.Sprintf("%s %s (this request: %s)", f.name, show(f.have), show(f.want)))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s exists with %s", ErrAlreadyExists, what, strings.Join(diffs, ", "))
}

func show(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case PDConf:
		b, _ := json.Marshal(v) // a plain struct: cannot fail
		return string(b)
	}
	return fmt.Sprint(v)
}

// txAbsent fails with ErrAlreadyExists unless key is absent (guarding it).
func txAbsent(tx *store.Tx, key, what string) error {
	_, err := tx.Get(key)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrAlreadyExists, what)
	case errors.Is(err, store.ErrNotFound):
		return nil
	default:
		return err
	}
}

func txPut(tx *store.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("vda: encode %s: %w", key, err)
	}
	tx.Put(key, b)
	return nil
}

// txDelete deletes a spec key and its status key.
func txDelete(tx *store.Tx, key string) {
	tx.Delete(key)
	tx.Delete(KeyStatus(key))
}

func (c *Cluster) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	return store.Update(ctx, c.s, fn)
}

func dnStatus(v *DiskNode) *Status       { return &v.Status }
func pdStatus(v *PhysicalDisk) *Status   { return &v.Status }
func cnStatus(v *ControllerNode) *Status { return &v.Status }
func daStatus(v *DiskArray) *Status      { return &v.Status }
func expStatus(v *Exporter) *Status      { return &v.Status }
