package storetest

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/vda-io/vda/store"
)

// FuzzURI feeds arbitrary URIs to a backend's URI parser: none may panic,
// every error wraps store.ErrInvalidURI, and no error shows the password.
func FuzzURI(f *testing.F, parse func(*url.URL) error, seeds ...string) {
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		pass, _ := u.User.Password()
		err = parse(u)
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
