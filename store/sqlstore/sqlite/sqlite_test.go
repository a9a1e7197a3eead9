package sqlite

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
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

// FuzzURI feeds arbitrary URIs to the URI parser: none may panic, every
// error wraps store.ErrInvalidURI, and no error shows the password.
func FuzzURI(f *testing.F) {
	for _, seed := range []string{
		"sqlite:///var/lib/vda/vda.db",
		"sqlite:rel.db",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		pass, _ := u.User.Password()
		_, err = sqlitePath(u)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrInvalidURI) {
			t.Fatalf("%q: error does not wrap ErrInvalidURI: %v", raw, err)
		}
		if len(pass) >= 4 && strings.Contains(err.Error(), pass) {
			t.Fatalf("%q: error shows the password: %v", raw, err)
		}
	})
}
