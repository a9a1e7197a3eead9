package postgres

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vda-io/vda/store"
)

func TestRegistersSchemes(t *testing.T) {
	for _, scheme := range []string{"postgresql", "postgres"} {
		assert.Contains(t, store.Schemes(), scheme, "registered with store.Open")
	}
}

// FuzzURI feeds arbitrary URIs to the URI parser: none may panic, every
// error wraps store.ErrInvalidURI, and no error shows the password.
func FuzzURI(f *testing.F) {
	for _, seed := range []string{
		"postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db",
		"postgres://u:p@/db?host=/tmp/sock&port=5432&search_path=s",
		"postgresql://u:p@h:99999999/db",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		pass, _ := u.User.Password()
		_, err = pgConfig(u)
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
