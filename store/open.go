package store

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// OpenOptions are the settings Open passes to a backend.
type OpenOptions struct {
	// Logger receives the backend's logs; nil means silent.
	Logger hclog.Logger
}

// OpenOption sets an OpenOptions field.
type OpenOption func(*OpenOptions)

// WithLogger sets the logger of the opened backend.
func WithLogger(l hclog.Logger) OpenOption {
	return func(o *OpenOptions) { o.Logger = l }
}

// OpenFunc opens a backend from a parsed URI. opts.Logger is never nil.
type OpenFunc func(ctx context.Context, u *url.URL, opts OpenOptions) (Store, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
)

// Register makes a backend available to Open under a URI scheme. Backends
// call it from init, like database/sql drivers: a binary imports the
// backend packages it supports (memstore registers "memory", etcdstore
// "etcd" and "embedded"). Like sql.Register it panics if open is nil or the
// scheme is taken, since both are programming errors caught at start-up.
func Register(scheme string, open OpenFunc) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if open == nil {
		panic("store: Register of nil OpenFunc for " + scheme)
	}
	if _, dup := registry[scheme]; dup {
		panic("store: Register called twice for scheme " + scheme)
	}
	registry[scheme] = open
}

// Schemes lists the registered URI schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open opens the store a URI names, e.g. "memory://",
// "embedded:///var/lib/vda/etcd" or "etcd://h1:2379,h2:2379/vda?cacert=...".
// The backend for the scheme must have been registered (see Register).
// Errors about the URI wrap ErrInvalidURI and never show its password.
func Open(ctx context.Context, uri string, opts ...OpenOption) (Store, error) {
	u, err := url.Parse(uri)
	if err != nil {
		// url.Error would echo the URI, password included.
		return nil, fmt.Errorf("%w: cannot parse", ErrInvalidURI)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: %s: no scheme (want one of %v)", ErrInvalidURI, Redacted(u), Schemes())
	}
	registryMu.RLock()
	open, ok := registry[u.Scheme]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: unknown scheme %q (registered: %v; is the backend package imported?)",
			ErrInvalidURI, u.Scheme, Schemes())
	}
	var o OpenOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return open(ctx, u, o)
}

// secretParams are the query parameters Redacted hides.
var secretParams = []string{"password", "pass", "passwd", "pwd", "secret", "token", "sslpassword"}

// Redacted returns u as a string with the userinfo password and any
// password-like query parameter replaced by "xxxxx", for logs and errors.
func Redacted(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if _, ok := c.User.Password(); ok {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = "(unparsable query hidden)"
		} else {
			for k := range q {
				if slices.Contains(secretParams, strings.ToLower(k)) {
					q[k] = []string{"xxxxx"}
				}
			}
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}
