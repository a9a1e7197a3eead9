package postgres

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/storetest"
)

func TestRegistersSchemes(t *testing.T) {
	for _, scheme := range []string{"postgresql", "postgres"} {
		assert.Contains(t, store.Schemes(), scheme, "registered with store.Open")
	}
}

// FuzzURI: no URI panics the parser, every error wraps
// store.ErrInvalidURI, and none shows the password.
func FuzzURI(f *testing.F) {
	storetest.FuzzURI(f, func(u *url.URL) error {
		_, err := pgConfig(u)
		return err
	},
		"postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db",
		"postgres://u:p@/db?host=/tmp/sock&port=5432&search_path=s",
		"postgresql://u:p@h:99999999/db",
	)
}
