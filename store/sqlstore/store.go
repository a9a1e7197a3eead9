package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/store"
)

// Config configures a Store. The zero value of every field but URI is
// meaningful.
type Config struct {
	// URI names the database: postgresql://, postgres://, mysql:// or
	// sqlite:// (see the package documentation).
	URI string
	// Logger receives the store's logs; nil means silent.
	Logger hclog.Logger
	// PollInterval is how often watchers check the revision for writes made
	// by other clients of the database. 0 means the dialect's default: 50ms
	// on MySQL, where polling is the only way; 1s on PostgreSQL (where
	// LISTEN/NOTIFY wakes watchers at once) and SQLite (where this process's
	// writes wake them at once).
	PollInterval time.Duration
	// ReapInterval is how often the store looks for expired leases to
	// delete. Keys of expired leases are hidden from reads meanwhile. 0
	// means one second.
	ReapInterval time.Duration
	// KeepRevisions is how much history the store keeps for watchers: once
	// the log holds twice as many revisions, the reaper compacts it down to
	// KeepRevisions. 0 keeps everything (call Compact yourself).
	KeepRevisions int64
	// MaxConns is the size of the connection pool; 0 means the dialect's
	// default (16; 8 for SQLite).
	MaxConns int
}

// DefaultConfig returns the configuration Open uses: the defaults above,
// with 10,000 revisions of history.
func DefaultConfig() Config {
	return Config{ReapInterval: time.Second, KeepRevisions: 10000}
}

func (c Config) validate() error {
	if c.PollInterval < 0 || c.ReapInterval < 0 || c.KeepRevisions < 0 || c.MaxConns < 0 {
		return fmt.Errorf("%w: negative interval, history or pool size", store.ErrInvalidArgument)
	}
	return nil
}

// Store is a store.Store on an SQL database. Many Stores, in one process or
// many, may share a database: they see one revision history.
type Store struct {
	cfg    Config
	log    hclog.Logger
	d      *dialect
	drv    Driver
	u      *url.URL
	db     *sql.DB
	schema string // PostgreSQL: current_schema(), for NOTIFY payloads
	// writer is the slot a write transaction of this Store holds: writers
	// queue here rather than on the database's lock, where waiting costs
	// far more (PostgreSQL's tuple locks, SQLite's coarse busy wait).
	writer chan struct{}

	hub      *hub
	reapKick chan struct{}

	ctx    context.Context // lifetime of background work; cancelled by Close
	cancel context.CancelFunc

	mu         sync.Mutex // guards closed transitions and wg.Add
	closed     atomic.Bool
	wg         sync.WaitGroup
	listenOnce sync.Once
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Compactor = (*Store)(nil)
)

func openURI(ctx context.Context, u *url.URL, opts store.OpenOptions) (store.Store, error) {
	cfg := DefaultConfig()
	cfg.URI = u.String()
	cfg.Logger = opts.Logger
	return New(ctx, cfg)
}

// New connects to the database cfg.URI names, checks its schema and starts
// the store's reaper. The schema must exist: see CreateSchema.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	db, d, u, err := openDB(ctx, cfg.URI, log)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, db, d, u); err != nil {
		_ = db.Close()
		return nil, err
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = d.pollInterval
	}
	if cfg.ReapInterval == 0 {
		cfg.ReapInterval = time.Second
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = d.maxConns
	}
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	drv, _ := driverOf(d) // openDB found it
	s := &Store{
		cfg: cfg, log: log.Named("sqlstore").With("db", d.name), d: d, drv: drv, u: u, db: db,
		hub: newHub(), reapKick: make(chan struct{}, 1), writer: make(chan struct{}, 1),
	}
	if d.notify {
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&s.schema); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("sqlstore: read current schema: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.maintain()
	go s.poll()
	s.log.Debug("opened", "uri", redact(u))
	return s, nil
}

// Close stops the store's goroutines, ends its watchers and closes the
// connection pool. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.closed.Store(true)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return s.db.Close()
}

// goroutine registers a goroutine the store owns, unless it is closed.
func (s *Store) goroutine() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Store) checkOpen(op string) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrClosed)
	}
	return nil
}

// fail wraps an error of operation op: ErrClosed once the store is closed,
// the context's error when it was cancelled.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if s.closed.Load() && !errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("sqlstore: %s: %w (%v)", op, store.ErrClosed, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlstore: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// Get returns one key, or store.ErrNotFound. A key whose lease has expired
// is reported absent even before the reaper deletes it.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.checkOpen("get"); err != nil {
		return store.KV{}, err
	}
	if err := store.ValidateKey(key); err != nil {
		return store.KV{}, err
	}
	kv := store.KV{Key: key}
	var expired bool
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT kv.v, kv.create_rev, kv.mod_rev, kv.version, kv.lease,
		CASE WHEN kv.lease = 0 THEN 0 WHEN l.expires_ms > {now} THEN 0 ELSE 1 END
		FROM vda_kv kv LEFT JOIN vda_lease l ON l.id = kv.lease WHERE kv.k = ?`), []byte(key)).
		Scan(&kv.Value, &kv.CreateRevision, &kv.ModRevision, &kv.Version, &kv.Lease, &expired)
	if errors.Is(err, sql.ErrNoRows) {
		return store.KV{}, fmt.Errorf("%w: %s", store.ErrNotFound, key)
	}
	if err != nil {
		return store.KV{}, s.fail(ctx, "get", err)
	}
	if expired {
		s.kickReaper()
		return store.KV{}, fmt.Errorf("%w: %s (lease expired)", store.ErrNotFound, key)
	}
	return kv, nil
}

// List returns the keys under prefix in key order. One statement reads the
// page and the revision it reports, so both come from one snapshot.
func (s *Store) List(ctx context.Context, prefix string, opt store.ListOptions) (store.ListResult, error) {
	if err := s.checkOpen("list"); err != nil {
		return store.ListResult{}, err
	}
	if err := store.ValidateListOptions(prefix, opt); err != nil {
		return store.ListResult{}, err
	}
	inner, args := rangeWhere(`SELECT kv.k, kv.v, kv.create_rev, kv.mod_rev, kv.version, kv.lease
		FROM vda_kv kv LEFT JOIN vda_lease l ON l.id = kv.lease
		WHERE (kv.lease = 0 OR l.expires_ms > {now})`, "kv.k", prefix, opt.StartAfter)
	inner += ` ORDER BY kv.k`
	if opt.Limit > 0 {
		inner += fmt.Sprintf(" LIMIT %d", opt.Limit+1)
	}
	// The state row joined with the page: one row with NULL keys if the
	// page is empty.
	q := `SELECT s.revision, x.k, x.v, x.create_rev, x.mod_rev, x.version, x.lease
		FROM vda_state s LEFT JOIN (` + inner + `) x ON 1 = 1 WHERE s.id = 1 ORDER BY x.k`
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return store.ListResult{}, s.fail(ctx, "list", err)
	}
	defer rows.Close()
	var res store.ListResult
	for rows.Next() {
		var k, v []byte
		var createRev, modRev, version, lease sql.NullInt64
		if err := rows.Scan(&res.Revision, &k, &v, &createRev, &modRev, &version, &lease); err != nil {
			return store.ListResult{}, s.fail(ctx, "list", err)
		}
		if k == nil {
			continue
		}
		res.KVs = append(res.KVs, store.KV{
			Key: string(k), Value: v, CreateRevision: createRev.Int64, ModRevision: modRev.Int64,
			Version: version.Int64, Lease: store.LeaseID(lease.Int64),
		})
	}
	if err := rows.Err(); err != nil {
		return store.ListResult{}, s.fail(ctx, "list", err)
	}
	if opt.Limit > 0 && len(res.KVs) > opt.Limit {
		res.KVs, res.More = res.KVs[:opt.Limit], true
	}
	return res, nil
}

// rangeWhere appends to a query with a WHERE clause the conditions that
// select the keys in column col under prefix and after startAfter.
func rangeWhere(q, col, prefix, startAfter string) (string, []any) {
	var args []any
	if prefix != "" {
		q += " AND " + col + " >= ?"
		args = append(args, []byte(prefix))
		if end := store.PrefixEnd(prefix); end != "" {
			q += " AND " + col + " < ?"
			args = append(args, []byte(end))
		}
	}
	if startAfter != "" {
		q += " AND " + col + " > ?"
		args = append(args, []byte(startAfter))
	}
	return q, args
}

// Revision returns the current store revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.checkOpen("revision"); err != nil {
		return 0, err
	}
	var rev int64
	if err := s.db.QueryRowContext(ctx, `SELECT revision FROM vda_state WHERE id = 1`).Scan(&rev); err != nil {
		return 0, s.fail(ctx, "revision", err)
	}
	return rev, nil
}
