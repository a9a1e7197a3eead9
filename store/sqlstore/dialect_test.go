package sqlstore

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vda-io/vda/store"
)

func TestRebind(t *testing.T) {
	assert.Equal(t, "SELECT a FROM t WHERE x = $1 AND y IN ($2,$3)",
		postgresDialect.rebind("SELECT a FROM t WHERE x = ? AND y IN (?,?)"))
	assert.Equal(t, "SELECT a FROM t WHERE x = ?", mysqlDialect.rebind("SELECT a FROM t WHERE x = ?"))
	assert.Equal(t, "SELECT 1 FROM s WHERE id = 1 FOR UPDATE", mysqlDialect.rebind("SELECT 1 FROM s WHERE id = 1{forupdate}"))
	assert.Equal(t, "SELECT 1 FROM s WHERE id = 1", sqliteDialect.rebind("SELECT 1 FROM s WHERE id = 1{forupdate}"))
	assert.Equal(t, "x > "+postgresDialect.nowMS, postgresDialect.rebind("x > {now}"))
	assert.Equal(t, "", placeholders(0))
	assert.Equal(t, "?,?,?", placeholders(3))
}

func TestDialectForWithoutDriver(t *testing.T) {
	// The package's external tests link every driver: unlink sqlite's.
	driversMu.Lock()
	drv, linked := drivers["sqlite"]
	delete(drivers, "sqlite")
	driversMu.Unlock()
	t.Cleanup(func() {
		if linked {
			driversMu.Lock()
			drivers["sqlite"] = drv
			driversMu.Unlock()
		}
	})
	_, _, err := dialectFor("sqlite")
	assert.ErrorIs(t, err, store.ErrInvalidURI)
	assert.ErrorContains(t, err, "import github.com/vda-io/vda/store/sqlstore/sqlite")
	_, _, err = dialectFor("oracle")
	assert.ErrorIs(t, err, store.ErrInvalidURI)
	assert.ErrorContains(t, err, "unknown scheme")
}

func TestNotifiedPayload(t *testing.T) {
	s := &Store{schema: "mine", hub: newHub()}
	for _, p := range []string{"other:50", "mine", "mine:x", ":7", "mine:-3"} {
		s.notified(p)
	}
	rev, _ := s.hub.current()
	assert.Zero(t, rev, "foreign or malformed payloads are ignored")
	s.notified("mine:42")
	rev, _ = s.hub.current()
	assert.Equal(t, int64(42), rev)
	s.notified("mine:41")
	rev, _ = s.hub.current()
	assert.Equal(t, int64(42), rev, "the hub never goes back")
}

func TestCombined(t *testing.T) {
	sts := []statement{
		{"INSERT INTO a VALUES (?)", []any{1}},
		{"DELETE FROM b WHERE k = ?", []any{2}},
		{"UPDATE c SET x = ?", []any{3}},
	}
	q, args := postgresDialect.combined(sts)
	assert.Equal(t, "WITH c0 AS (INSERT INTO a VALUES (?)), c1 AS (DELETE FROM b WHERE k = ?) UPDATE c SET x = ?", q)
	assert.Equal(t, []any{1, 2, 3}, args)
	q, args = mysqlDialect.combined(sts)
	assert.Equal(t, "INSERT INTO a VALUES (?);\nDELETE FROM b WHERE k = ?;\nUPDATE c SET x = ?", q)
	assert.Equal(t, []any{1, 2, 3}, args)
	q, args = sqliteDialect.combined(sts[:1])
	assert.Equal(t, sts[0].q, q)
	assert.Equal(t, []any{1}, args)
}
