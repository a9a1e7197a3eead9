package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vda-io/vda/store"
)

// Config configures a Store.
type Config struct {
	// Prefix is prepended to every key ("" = the whole keyspace). End it
	// with a separator ("/vda/") so that it cannot be a prefix of a sibling.
	Prefix string
	// Logger receives the Store's logs; nil means silent.
	Logger hclog.Logger
	// SingleMember says the client talks to the only member of its etcd
	// cluster (etcdembed sets it). Get, List and Revision then read from
	// that member without a raft round trip (serializable reads, 2-3x
	// cheaper in-process): with one member, etcd answers a write only once
	// that member applied it, and its reads see what it applied, so a read
	// still sees every write completed before it, whichever client made
	// it, and a later read never sees less. With several members a
	// follower may lag the leader, so reads stay linearizable.
	//
	// A watch event is not a completed write: etcd sends it to watchers
	// before the write is visible to reads (mvcc's
	// watchableStoreTxnWrite.End notifies, then ends the write), so a
	// serializable read issued on an event can still answer from before
	// it. A read that answers from before a revision this Store's watches
	// have delivered is made again as a linearizable read (see read).
	SingleMember bool
}

// Store is a store.Store on an etcd cluster.
type Store struct {
	cli    *clientv3.Client
	pfx    string
	log    hclog.Logger
	single bool // Config.SingleMember
	// seen is the highest revision this Store's watches have delivered
	// (single member only): reads must not answer from before it.
	seen   atomic.Int64
	closed atomic.Bool
	done   chan struct{} // closed by Close

	mu       sync.Mutex
	closers  []func() error // run by Close, last first
	watchers map[*watcher]struct{}
	wg       sync.WaitGroup // watch goroutines
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Compactor = (*Store)(nil)
)

// New returns a Store that uses cli; the caller keeps ownership of cli
// (Close does not close it).
func New(cli *clientv3.Client, cfg Config) (*Store, error) {
	if cli == nil {
		return nil, fmt.Errorf("%w: etcdstore: nil client", store.ErrInvalidArgument)
	}
	if err := store.ValidatePrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("etcdstore: prefix: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Store{cli: cli, pfx: cfg.Prefix, log: cfg.Logger.Named("etcdstore"), single: cfg.SingleMember,
		done: make(chan struct{}), watchers: map[*watcher]struct{}{}}, nil
}

// Client returns the etcd client the Store uses.
func (s *Store) Client() *clientv3.Client { return s.cli }

// OnClose registers a cleanup for Close, run after the Store's own (last
// registered first): the client or the embedded server it was opened with.
func (s *Store) OnClose(fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, fn)
}

// Close implements store.Store: watches end, then owned resources close.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.done)
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	for w := range s.watchers {
		w.cancel()
	}
	s.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("etcdstore: close: %w", errors.Join(errs...))
	}
	return nil
}

func (s *Store) begin(ctx context.Context, op string) error {
	if s.closed.Load() {
		return fmt.Errorf("etcdstore: %s: %w", op, store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcdstore: %s: %w", op, err)
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := store.ValidateKey(key); err != nil {
		return store.KV{}, err
	}
	if err := s.begin(ctx, "get"); err != nil {
		return store.KV{}, err
	}
	resp, err := s.read(ctx, s.pfx+key)
	if err != nil {
		return store.KV{}, s.mapErr(ctx, "get "+key, err)
	}
	if len(resp.Kvs) == 0 {
		return store.KV{}, fmt.Errorf("%w: %s", store.ErrNotFound, key)
	}
	return s.kv(resp.Kvs[0]), nil
}

func (s *Store) kv(kv *mvccpb.KeyValue) store.KV {
	return store.KV{
		Key:            string(kv.Key[len(s.pfx):]),
		Value:          kv.Value,
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          store.LeaseID(kv.Lease),
	}
}

// keyRange returns the etcd range [start, end) of the keys under prefix
// (after the Store's own prefix), never with an empty start key.
func (s *Store) keyRange(prefix string) (start, end string) {
	start = s.pfx + prefix
	end = store.PrefixEnd(start)
	if end == "" {
		end = "\x00" // etcd: no upper bound
	}
	if start == "" {
		start = "\x00"
	}
	return start, end
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, opt store.ListOptions) (store.ListResult, error) {
	if err := store.ValidateListOptions(prefix, opt); err != nil {
		return store.ListResult{}, err
	}
	if err := s.begin(ctx, "list"); err != nil {
		return store.ListResult{}, err
	}
	start, end := s.keyRange(prefix)
	if after := s.pfx + opt.StartAfter + "\x00"; opt.StartAfter != "" && after > start {
		start = after
	}
	opts := []clientv3.OpOption{clientv3.WithRange(end)}
	if opt.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(opt.Limit)))
	}
	resp, err := s.read(ctx, start, opts...)
	if err != nil {
		return store.ListResult{}, s.mapErr(ctx, "list "+prefix, err)
	}
	res := store.ListResult{More: resp.More, Revision: resp.Header.Revision}
	res.KVs = make([]store.KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		res.KVs[i] = s.kv(kv)
	}
	return res, nil
}

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	if err := store.ValidateTxn(t); err != nil {
		return store.TxnResult{}, err
	}
	if err := s.begin(ctx, "txn"); err != nil {
		return store.TxnResult{}, err
	}
	cmps := make([]clientv3.Cmp, len(t.Conds))
	for i, c := range t.Conds {
		cmps[i] = clientv3.Compare(clientv3.ModRevision(s.pfx+c.Key), "=", c.ModRevision)
	}
	ops := make([]clientv3.Op, len(t.Ops))
	for i, op := range t.Ops {
		switch {
		case op.Delete:
			ops[i] = clientv3.OpDelete(s.pfx + op.Key)
		case op.Lease != store.NoLease:
			ops[i] = clientv3.OpPut(s.pfx+op.Key, string(op.Value), clientv3.WithLease(clientv3.LeaseID(op.Lease)))
		default:
			ops[i] = clientv3.OpPut(s.pfx+op.Key, string(op.Value))
		}
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return store.TxnResult{}, s.mapErr(ctx, "txn", err)
	}
	return store.TxnResult{Succeeded: resp.Succeeded, Revision: resp.Header.Revision}, nil
}

// read is every read of the Store: on a single member (Config.SingleMember)
// a serializable one, made again linearizable if it answered from before
// a revision this Store's watches delivered before it was called (the
// member sent the event before the write was visible to reads), so that a
// read on an event sees it; elsewhere a linearizable one.
func (s *Store) read(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if !s.single {
		return s.cli.Get(ctx, key, opts...)
	}
	seen := s.seen.Load()
	resp, err := s.cli.Get(ctx, key, append(opts, clientv3.WithSerializable())...)
	if err != nil || resp.Header.Revision >= seen {
		return resp, err
	}
	s.log.Trace("read behind a delivered event, reading again", "key", key, "revision", resp.Header.Revision, "seen", seen)
	return s.cli.Get(ctx, key, opts...)
}

// delivered records that a watch is about to deliver changes up to rev.
func (s *Store) delivered(rev int64) {
	for {
		cur := s.seen.Load()
		if rev <= cur || s.seen.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.begin(ctx, "revision"); err != nil {
		return 0, err
	}
	start, _ := s.keyRange("")
	resp, err := s.read(ctx, start, clientv3.WithCountOnly())
	if err != nil {
		return 0, s.mapErr(ctx, "revision", err)
	}
	return resp.Header.Revision, nil
}

// Compact implements store.Compactor (for the whole etcd keyspace, not only
// the prefix: etcd history is global).
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if err := s.begin(ctx, "compact"); err != nil {
		return err
	}
	if _, err := s.cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return s.mapErr(ctx, fmt.Sprintf("compact %d", rev), err)
	}
	s.log.Debug("compacted", "revision", rev)
	return nil
}

// Grant implements store.Store. etcd counts TTLs in whole seconds: ttl is
// rounded up, and the server raises it to its minimum (1.5 election
// timeouts, rounded up to a second).
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	if err := store.ValidateTTL(ttl); err != nil {
		return 0, err
	}
	if err := s.begin(ctx, "grant"); err != nil {
		return 0, err
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	resp, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return 0, s.mapErr(ctx, "grant", err)
	}
	return store.LeaseID(resp.ID), nil
}

// KeepAlive implements store.Store.
func (s *Store) KeepAlive(ctx context.Context, id store.LeaseID) error {
	if err := s.begin(ctx, "keepalive"); err != nil {
		return err
	}
	if _, err := s.cli.KeepAliveOnce(ctx, clientv3.LeaseID(id)); err != nil {
		return s.mapErr(ctx, fmt.Sprintf("keepalive %d", id), err)
	}
	return nil
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, id store.LeaseID) error {
	if err := s.begin(ctx, "revoke"); err != nil {
		return err
	}
	if _, err := s.cli.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
		return s.mapErr(ctx, fmt.Sprintf("revoke %d", id), err)
	}
	return nil
}
