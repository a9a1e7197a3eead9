package sqlite

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/storetest"
)

func TestSQLitePath(t *testing.T) {
	for uri, want := range map[string]string{
		"sqlite:///var/lib/vda/vda.db": "/var/lib/vda/vda.db",
		"sqlite://vda.db":              "vda.db",
		"sqlite:vda.db":                "vda.db",
	} {
		u, err := url.Parse(uri)
		require.NoError(t, err)
		got, err := sqlitePath(u)
		require.NoError(t, err, uri)
		assert.Equal(t, want, got, uri)
	}
	for _, bad := range []string{"sqlite://", "sqlite:///a%3Fb.db"} {
		u, err := url.Parse(bad)
		require.NoError(t, err)
		_, err = sqlitePath(u)
		assert.ErrorIs(t, err, store.ErrInvalidURI, bad)
	}
}

func TestRegistersSchemes(t *testing.T) {
	for _, scheme := range []string{"sqlite"} {
		assert.Contains(t, store.Schemes(), scheme, "registered with store.Open")
	}
}

// FuzzURI: no URI panics the parser, every error wraps
// store.ErrInvalidURI, and none shows the password.
func FuzzURI(f *testing.F) {
	storetest.FuzzURI(f, func(u *url.URL) error {
		_, err := sqlitePath(u)
		return err
	},
		"sqlite:///var/lib/vda/vda.db",
		"sqlite:rel.db",
	)
}
