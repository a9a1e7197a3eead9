package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/vda-io/vda/store"
)

// Grant creates a lease that expires ttl (rounded up to a millisecond) after
// its last refresh, as measured by the database's clock.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	if err := s.checkOpen("grant"); err != nil {
		return 0, err
	}
	if err := store.ValidateTTL(ttl); err != nil {
		return 0, err
	}
	ttlMS := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	var id int64
	err := s.write(ctx, "grant", func(w *writeTx) error {
		id = w.nextLease
		w.nextLease++
		w.dirty = true
		_, err := w.exec(`INSERT INTO vda_lease (id, ttl_ms, expires_ms) VALUES (?, ?, {now} + ?)`, id, ttlMS, ttlMS)
		return err
	})
	if err != nil {
		return 0, err
	}
	return store.LeaseID(id), nil
}

// KeepAlive refreshes a lease once; store.ErrLeaseNotFound if it expired,
// was revoked or never existed.
func (s *Store) KeepAlive(ctx context.Context, id store.LeaseID) error {
	if err := s.checkOpen("keepalive"); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.d.rebind(
		`UPDATE vda_lease SET expires_ms = {now} + ttl_ms WHERE id = ? AND expires_ms > {now}`), int64(id))
	if err != nil {
		return s.fail(ctx, "keepalive", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.fail(ctx, "keepalive", err)
	}
	if n == 0 {
		s.kickReaper()
		return fmt.Errorf("sqlstore: keepalive: %w: %d", store.ErrLeaseNotFound, id)
	}
	return nil
}

// Revoke ends a lease now and deletes its keys at one new revision.
func (s *Store) Revoke(ctx context.Context, id store.LeaseID) error {
	if err := s.checkOpen("revoke"); err != nil {
		return err
	}
	return s.write(ctx, "revoke", func(w *writeTx) error {
		var n int
		if err := w.tx.QueryRowContext(w.ctx, s.d.rebind(`SELECT COUNT(*) FROM vda_lease WHERE id = ?`),
			int64(id)).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: %d", store.ErrLeaseNotFound, id)
		}
		return w.revokeLease(int64(id))
	})
}

// reapExpired revokes every expired lease, each at its own revision.
func (w *writeTx) reapExpired() error {
	rows, err := w.tx.QueryContext(w.ctx, w.s.d.rebind(
		`SELECT id FROM vda_lease WHERE expires_ms <= {now} ORDER BY id`))
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := w.revokeLease(id); err != nil {
			return err
		}
		w.s.log.Debug("lease expired", "lease", id)
	}
	return nil
}

// revokeLease deletes a lease and its keys (at a new revision, if it has
// any keys).
func (w *writeTx) revokeLease(id int64) error {
	rows, err := w.tx.QueryContext(w.ctx, w.s.d.rebind(`SELECT k FROM vda_kv WHERE lease = ? ORDER BY k`), id)
	if err != nil {
		return err
	}
	var keys []string
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, string(k))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		rev := w.rev + 1
		if _, err := w.exec(`DELETE FROM vda_kv WHERE lease = ?`, id); err != nil {
			return err
		}
		for _, k := range keys {
			w.appendLog(rev, logRow{kind: kindDelete, key: k})
		}
		w.rev = rev
	}
	_, err = w.exec(`DELETE FROM vda_lease WHERE id = ?`, id)
	return err
}

// kickReaper asks the maintenance loop to reap now (a read saw an expired
// lease).
func (s *Store) kickReaper() {
	select {
	case s.reapKick <- struct{}{}:
	default:
	}
}

// maintain is the reaper: it deletes the keys of expired leases and trims
// the history to cfg.KeepRevisions, every ReapInterval or when kicked.
func (s *Store) maintain() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.reapKick:
		}
		if err := s.maintainOnce(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("maintenance failed", "error", err)
		}
	}
}

func (s *Store) maintainOnce(ctx context.Context) error {
	var expired int
	var rev, compacted int64
	if err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT revision, compacted,
		(SELECT COUNT(*) FROM vda_lease WHERE expires_ms <= {now}) FROM vda_state WHERE id = 1`)).
		Scan(&rev, &compacted, &expired); err != nil {
		return err
	}
	keep := s.cfg.KeepRevisions
	compact := keep > 0 && rev-compacted > 2*keep
	if expired == 0 && !compact {
		return nil
	}
	// The write reaps expired leases before running this function.
	return s.write(ctx, "maintain", func(w *writeTx) error {
		if compact && w.rev-keep > w.compacted {
			return w.compact(w.rev - keep)
		}
		return nil
	})
}
