package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
)

func vdaDB(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestActions(t *testing.T) {
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			uri := b.Fresh(t)

			code, out, _ := vdaDB(t, "--action", "version", "--db-uri", uri)
			require.Equal(t, exitOK, code)
			assert.Contains(t, out, "schema version 0 ", "a fresh database has no schema")

			code, _, errOut := vdaDB(t, "--action", "upgrade", "--db-uri", uri)
			assert.Equal(t, exitError, code, "upgrade needs a schema")
			assert.Contains(t, errOut, "vda-db --action create")

			_, err := store.Open(context.Background(), uri)
			require.ErrorIs(t, err, sqlstore.ErrNoSchema, "stores refuse a database without schema")
			assert.Contains(t, err.Error(), "run vda-db --action create")

			for range 2 { // idempotent
				code, out, errOut = vdaDB(t, "--action", "create", "--db-uri", uri)
				require.Equal(t, exitOK, code, errOut)
				assert.Contains(t, out, "schema version 1 ready")
			}
			code, out, _ = vdaDB(t, "--action", "version", "--db-uri", uri)
			require.Equal(t, exitOK, code)
			assert.Contains(t, out, "schema version 1 ")
			code, out, _ = vdaDB(t, "--action", "upgrade", "--db-uri", uri)
			require.Equal(t, exitOK, code)
			assert.Contains(t, out, "is current")

			s, err := store.Open(context.Background(), uri)
			require.NoError(t, err)
			res, err := s.Txn(context.Background(), store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v")}}})
			require.NoError(t, err)
			require.NoError(t, s.Close())

			// Re-running create keeps the data.
			code, _, _ = vdaDB(t, "--action", "create", "--db-uri", uri)
			require.Equal(t, exitOK, code)
			s, err = store.Open(context.Background(), uri)
			require.NoError(t, err)
			kv, err := s.Get(context.Background(), "k")
			require.NoError(t, err)
			assert.Equal(t, res.Revision, kv.ModRevision)
			require.NoError(t, s.Close())

			// A schema from a newer VDA is refused by everyone.
			sqltest.Exec(t, uri, "UPDATE vda_schema SET version = 99")
			_, err = store.Open(context.Background(), uri)
			require.ErrorIs(t, err, sqlstore.ErrSchemaTooNew)
			code, _, errOut = vdaDB(t, "--action", "create", "--db-uri", uri)
			assert.Equal(t, exitError, code)
			assert.Contains(t, errOut, "version 99")
			code, out, _ = vdaDB(t, "--action", "version", "--db-uri", uri)
			require.Equal(t, exitOK, code)
			assert.Contains(t, out, "schema version 99 ")
		})
	}
}

func TestUsage(t *testing.T) {
	cases := map[string][]string{
		"no action":      {"--db-uri", "sqlite:///x.db"},
		"bad action":     {"--action", "drop", "--db-uri", "sqlite:///x.db"},
		"no uri":         {"--action", "create", "--db-uri", ""},
		"stray argument": {"--action", "create", "--db-uri", "sqlite:///x.db", "extra"},
		"unknown flag":   {"--force"},
	}
	for name, args := range cases {
		code, out, errOut := vdaDB(t, args...)
		assert.Equal(t, exitUsage, code, name)
		assert.Empty(t, out, name)
		assert.NotEmpty(t, errOut, name)
	}
}

func TestBadURI(t *testing.T) {
	code, _, errOut := vdaDB(t, "--action", "create", "--db-uri", "oracle://u:secret@h/db")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "unknown scheme")
	assert.False(t, strings.Contains(errOut, "secret"), "passwords never show: %s", errOut)

	code, _, errOut = vdaDB(t, "--action", "version", "--db-uri", "postgresql://u:secret@127.0.0.1:1/db?connect_timeout=1")
	assert.Equal(t, exitError, code)
	assert.False(t, strings.Contains(errOut, "secret"), "passwords never show: %s", errOut)
}
