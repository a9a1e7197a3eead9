package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vda-io/vda/store"
)

// Log entry kinds in vda_log.kind.
const (
	kindPut    = 1
	kindDelete = 2
)

// maxWriteAttempts bounds the retries of a write transaction that failed
// with a retryable error (deadlock, busy database) before it committed.
const maxWriteAttempts = 5

// writeTx is one write transaction. It holds the lock on the state row, so
// it is the only writer of the database until it ends.
type writeTx struct {
	ctx       context.Context
	s         *Store
	tx        *sql.Tx
	rev       int64 // store revision, advanced by each change
	compacted int64
	nextLease int64
	dirty     bool        // the state row must be written back
	log       []logRow    // changes to append to vda_log
	pending   []statement // final writes, sent together by flush
}

// statement is one SQL statement with its arguments.
type statement struct {
	q    string
	args []any
}

type logRow struct {
	rev, seq  int64
	kind      int
	key       string
	value     []byte
	createRev int64
	version   int64
	lease     int64
}

// keyState is a key's row as a write transaction found it.
type keyState struct {
	createRev, modRev, version int64
}

// write runs fn in a write transaction and commits it, retrying retryable
// failures. Expired leases are reaped first, in the same transaction, so fn
// sees no key of an expired lease.
func (s *Store) write(ctx context.Context, op string, fn func(w *writeTx) error) error {
	if err := s.checkOpen(op); err != nil {
		return err
	}
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return s.fail(ctx, op, ctx.Err())
	}
	for attempt := 1; ; attempt++ {
		rev, err := s.writeOnce(ctx, fn)
		if err == nil {
			s.hub.advance(rev)
			return nil
		}
		if attempt >= maxWriteAttempts || !isRetryable(s.drv, err) {
			return s.fail(ctx, op, err)
		}
		s.log.Debug("retrying write", "op", op, "attempt", attempt, "error", err)
		select {
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		case <-ctx.Done():
			return s.fail(ctx, op, ctx.Err())
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(w *writeTx) error) (rev int64, err error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: s.d.writeLevel})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	w := &writeTx{ctx: ctx, s: s, tx: tx}
	// The lock, and whether any lease has expired (as of this statement, by
	// the database's clock), in one round trip.
	var expired int
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT revision, compacted, next_lease,
		(SELECT COUNT(*) FROM vda_lease WHERE expires_ms <= {now})
		FROM vda_state WHERE id = 1{forupdate}`)).
		Scan(&w.rev, &w.compacted, &w.nextLease, &expired); err != nil {
		return 0, err
	}
	start := w.rev
	if expired > 0 {
		if err := w.reapExpired(); err != nil {
			return 0, err
		}
	}
	if err := fn(w); err != nil {
		return 0, err
	}
	w.flushLog()
	w.saveState(w.rev != start)
	if err := w.flush(); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return w.rev, nil
}

// saveState writes the state row back if it changed. On PostgreSQL a new
// revision is also NOTIFYed (delivered at commit to every store LISTENing on
// the database).
func (w *writeTx) saveState(newRevision bool) {
	if !w.dirty && !newRevision {
		return
	}
	w.later(`UPDATE vda_state SET revision = ?, compacted = ?, next_lease = ? WHERE id = 1`,
		w.rev, w.compacted, w.nextLease)
	if w.s.d.notify && newRevision {
		w.later(`SELECT pg_notify(?, ?)`, pgChannel, w.s.schema+":"+strconv.FormatInt(w.rev, 10))
	}
}

// later queues a write for flush. Nothing in the transaction may read what
// it writes before the flush.
func (w *writeTx) later(q string, args ...any) {
	w.pending = append(w.pending, statement{q, args})
}

// Bounds of one combined statement: PostgreSQL takes at most 65535
// parameters, MySQL packets are limited by max_allowed_packet (16 MiB by
// default; interpolated binary values may double in size).
const (
	maxCombinedArgs  = 60000
	maxCombinedBytes = 4 << 20
)

// flush sends the queued writes, combined where the dialect allows, to hold
// the state row lock for as few round trips as possible: PostgreSQL as one
// statement of data-modifying CTEs, MySQL as one multi-statement. They
// touch distinct rows, so their order does not matter.
func (w *writeTx) flush() error {
	pending := w.pending
	w.pending = nil
	for len(pending) > 0 {
		n, nargs, size := 1, len(pending[0].args), argBytes(pending[0].args)
		for w.s.d.combine != combineNone && n < len(pending) &&
			nargs+len(pending[n].args) <= maxCombinedArgs && size+argBytes(pending[n].args) <= maxCombinedBytes {
			nargs += len(pending[n].args)
			size += argBytes(pending[n].args)
			n++
		}
		q, args := w.s.d.combined(pending[:n])
		if _, err := w.exec(q, args...); err != nil {
			return err
		}
		pending = pending[n:]
	}
	return nil
}

// combined joins statements into one in the dialect's way.
func (d *dialect) combined(sts []statement) (string, []any) {
	if len(sts) == 1 {
		return sts[0].q, sts[0].args
	}
	var b strings.Builder
	var args []any
	for i, st := range sts {
		switch {
		case d.combine == combineMulti && i > 0:
			b.WriteString(";\n")
		case d.combine == combineCTE && i == 0:
			b.WriteString("WITH ")
		case d.combine == combineCTE && i < len(sts)-1:
			b.WriteString(", ")
		case d.combine == combineCTE:
			b.WriteString(" ")
		}
		if d.combine == combineCTE && i < len(sts)-1 {
			fmt.Fprintf(&b, "c%d AS (%s)", i, st.q)
		} else {
			b.WriteString(st.q)
		}
		args = append(args, st.args...)
	}
	return b.String(), args
}

// argBytes estimates the size of statement arguments on the wire.
func argBytes(args []any) int {
	n := 0
	for _, a := range args {
		if b, ok := a.([]byte); ok {
			n += 2*len(b) + 10
		} else {
			n += 20
		}
	}
	return n
}

// exec runs one statement of the transaction.
func (w *writeTx) exec(q string, args ...any) (sql.Result, error) {
	return w.tx.ExecContext(w.ctx, w.s.d.rebind(q), args...)
}

// readKeys returns the rows of the given keys that exist.
func (w *writeTx) readKeys(keys []string) (map[string]keyState, error) {
	found := make(map[string]keyState, len(keys))
	if len(keys) == 0 {
		return found, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = []byte(k)
	}
	rows, err := w.tx.QueryContext(w.ctx, w.s.d.rebind(
		`SELECT k, create_rev, mod_rev, version FROM vda_kv WHERE k IN (`+placeholders(len(keys))+`)`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k []byte
		var st keyState
		if err := rows.Scan(&k, &st.createRev, &st.modRev, &st.version); err != nil {
			return nil, err
		}
		found[string(k)] = st
	}
	return found, rows.Err()
}

// txn applies a store.Txn: conditions against the locked, current state,
// then every op at one new revision.
func (w *writeTx) txn(t store.Txn) (store.TxnResult, error) {
	keys := make([]string, 0, len(t.Conds)+len(t.Ops))
	for _, c := range t.Conds {
		keys = append(keys, c.Key)
	}
	for _, op := range t.Ops {
		keys = append(keys, op.Key)
	}
	cur, err := w.readKeys(keys)
	if err != nil {
		return store.TxnResult{}, err
	}
	for _, c := range t.Conds {
		if cur[c.Key].modRev != c.ModRevision {
			return store.TxnResult{Succeeded: false, Revision: w.rev}, nil
		}
	}
	if err := w.checkLeases(t.Ops); err != nil {
		return store.TxnResult{}, err
	}
	rev := w.rev + 1
	var puts []logRow
	var dels []string
	for _, op := range t.Ops {
		prev, exists := cur[op.Key]
		switch {
		case op.Delete && !exists:
			continue
		case op.Delete:
			dels = append(dels, op.Key)
			w.appendLog(rev, logRow{kind: kindDelete, key: op.Key})
		default:
			r := logRow{kind: kindPut, key: op.Key, value: op.Value, createRev: rev, version: 1, lease: int64(op.Lease)}
			if exists {
				r.createRev, r.version = prev.createRev, prev.version+1
			}
			puts = append(puts, r)
			w.appendLog(rev, r)
		}
	}
	if len(puts) == 0 && len(dels) == 0 {
		return store.TxnResult{Succeeded: true, Revision: w.rev}, nil
	}
	w.deleteKeys(dels)
	w.upsert(rev, puts)
	w.rev = rev
	return store.TxnResult{Succeeded: true, Revision: rev}, nil
}

// checkLeases fails with store.ErrLeaseNotFound unless every lease the ops
// bind keys to exists and has not expired.
func (w *writeTx) checkLeases(ops []store.Op) error {
	seen := map[store.LeaseID]bool{}
	var ids []any
	for _, op := range ops {
		if op.Lease != store.NoLease && !op.Delete && !seen[op.Lease] {
			seen[op.Lease] = true
			ids = append(ids, int64(op.Lease))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var n int
	if err := w.tx.QueryRowContext(w.ctx, w.s.d.rebind(`SELECT COUNT(*) FROM vda_lease WHERE id IN (`+
		placeholders(len(ids))+`) AND expires_ms > {now}`), ids...).Scan(&n); err != nil {
		return err
	}
	if n != len(ids) {
		return fmt.Errorf("%w: a key is bound to a lease that does not exist", store.ErrLeaseNotFound)
	}
	return nil
}

func (w *writeTx) appendLog(rev int64, r logRow) {
	seq := int64(0)
	if n := len(w.log); n > 0 && w.log[n-1].rev == rev {
		seq = w.log[n-1].seq + 1
	}
	r.rev, r.seq = rev, seq
	w.log = append(w.log, r)
}

// batchRows bounds the rows of one multi-row statement (PostgreSQL takes at
// most 65535 parameters).
const batchRows = 500

func (w *writeTx) deleteKeys(keys []string) {
	for len(keys) > 0 {
		n := min(len(keys), batchRows)
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = []byte(k)
		}
		w.later(`DELETE FROM vda_kv WHERE k IN (`+placeholders(n)+`)`, args...)
		keys = keys[n:]
	}
}

// upsert writes the rows of puts (whole rows: create revision and version
// are computed by the caller).
func (w *writeTx) upsert(rev int64, puts []logRow) {
	if len(puts) == 0 {
		return
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO vda_kv (k, v, create_rev, mod_rev, version, lease) VALUES `)
	args := make([]any, 0, 6*len(puts))
	for i, p := range puts {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?)")
		args = append(args, []byte(p.key), nonNil(p.value), p.createRev, rev, p.version, p.lease)
	}
	if w.s.d.name == "mysql" {
		q.WriteString(` ON DUPLICATE KEY UPDATE v = VALUES(v), create_rev = VALUES(create_rev),
			mod_rev = VALUES(mod_rev), version = VALUES(version), lease = VALUES(lease)`)
	} else {
		q.WriteString(` ON CONFLICT (k) DO UPDATE SET v = excluded.v, create_rev = excluded.create_rev,
			mod_rev = excluded.mod_rev, version = excluded.version, lease = excluded.lease`)
	}
	w.later(q.String(), args...)
}

// flushLog appends the transaction's changes to vda_log.
func (w *writeTx) flushLog() {
	rows := w.log
	for len(rows) > 0 {
		n := min(len(rows), batchRows)
		var q strings.Builder
		q.WriteString(`INSERT INTO vda_log (revision, seq, kind, k, v, create_rev, version, lease) VALUES `)
		args := make([]any, 0, 8*n)
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?,?)")
			args = append(args, r.rev, r.seq, r.kind, []byte(r.key), nonNil(r.value), r.createRev, r.version, r.lease)
		}
		w.later(q.String(), args...)
		rows = rows[n:]
	}
	w.log = nil
}

// nonNil: the value columns are NOT NULL, and drivers send a nil slice as
// NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Txn applies t atomically if all its conditions hold (see store.Store).
func (s *Store) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	if err := s.checkOpen("txn"); err != nil {
		return store.TxnResult{}, err
	}
	if err := store.ValidateTxn(t); err != nil {
		return store.TxnResult{}, err
	}
	var res store.TxnResult
	err := s.write(ctx, "txn", func(w *writeTx) error {
		var err error
		res, err = w.txn(t)
		return err
	})
	if err != nil {
		return store.TxnResult{}, err
	}
	return res, nil
}

// Compact discards the history before rev: a Watch from a lower revision
// gets store.ErrCompacted. As in etcd, compacting to or below the last
// compaction fails with store.ErrCompacted, and rev above the current
// revision is an error.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if rev <= 0 {
		return fmt.Errorf("sqlstore: compact: %w: revision %d", store.ErrInvalidArgument, rev)
	}
	return s.write(ctx, "compact", func(w *writeTx) error {
		if rev > w.rev {
			return fmt.Errorf("%w: compact to revision %d beyond the current %d", store.ErrInvalidArgument, rev, w.rev)
		}
		if rev <= w.compacted {
			return fmt.Errorf("%w: revision %d already compacted (up to %d)", store.ErrCompacted, rev, w.compacted)
		}
		return w.compact(rev)
	})
}

func (w *writeTx) compact(rev int64) error {
	if rev <= w.compacted {
		return nil
	}
	if _, err := w.exec(`DELETE FROM vda_log WHERE revision < ?`, rev); err != nil {
		return err
	}
	w.compacted, w.dirty = rev, true
	return nil
}
