package etcdstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vda-io/vda/internal/hclogzap"
	"github.com/vda-io/vda/store"
)

func init() {
	store.Register("etcd", openEtcd)
}

// ClientConfig turns an etcd:// URL (see the package documentation) into
// a clientv3 configuration and the key prefix. Errors wrap
// store.ErrInvalidURI and never show the password.
func ClientConfig(u *url.URL) (clientv3.Config, string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", store.ErrInvalidURI, store.Redacted(u), fmt.Sprintf(format, args...))
	}
	if u.Scheme != "etcd" {
		return clientv3.Config{}, "", bad("scheme is not etcd")
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "cacert", "cert", "key", "tls", "user", "password", "endpoint", "dial-timeout":
		default:
			return clientv3.Config{}, "", bad("unknown parameter %q", k)
		}
	}
	cfg := clientv3.Config{DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if u.Host != "" {
		for _, h := range strings.Split(u.Host, ",") {
			if h == "" {
				return clientv3.Config{}, "", bad("empty host")
			}
			cfg.Endpoints = append(cfg.Endpoints, h)
		}
	}
	cfg.Endpoints = append(cfg.Endpoints, q["endpoint"]...)
	if len(cfg.Endpoints) == 0 {
		return clientv3.Config{}, "", bad("no endpoint")
	}
	if d := q.Get("dial-timeout"); d != "" {
		t, err := time.ParseDuration(d)
		if err != nil || t <= 0 {
			return clientv3.Config{}, "", bad("bad dial-timeout %q", d)
		}
		cfg.DialTimeout = t
	}
	cfg.Username = q.Get("user")
	cfg.Password = q.Get("password")
	if u.User != nil {
		cfg.Username = u.User.Username()
		if p, ok := u.User.Password(); ok {
			cfg.Password = p
		}
	}
	if cfg.Password != "" && cfg.Username == "" {
		return clientv3.Config{}, "", bad("password without user")
	}
	tlsCfg, err := clientTLS(q)
	if err != nil {
		return clientv3.Config{}, "", bad("%v", err)
	}
	cfg.TLS = tlsCfg
	prefix := ""
	if p := strings.Trim(u.Path, "/"); p != "" {
		prefix = "/" + p + "/"
	}
	if err := store.ValidatePrefix(prefix); err != nil {
		return clientv3.Config{}, "", bad("prefix: %v", err)
	}
	return cfg, prefix, nil
}

func clientTLS(q url.Values) (*tls.Config, error) {
	ca, cert, key := q.Get("cacert"), q.Get("cert"), q.Get("key")
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("cert and key go together")
	}
	switch q.Get("tls") {
	case "", "0", "false":
		if ca == "" && cert == "" {
			return nil, nil
		}
	case "1", "true":
	default:
		return nil, fmt.Errorf("bad tls %q", q.Get("tls"))
	}
	if ca == "" && cert == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil // system roots
	}
	info := transport.TLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: ca}
	c, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return c, nil
}

func openEtcd(ctx context.Context, u *url.URL, o store.OpenOptions) (store.Store, error) {
	cfg, prefix, err := ClientConfig(u)
	if err != nil {
		return nil, err
	}
	cfg.Context = context.WithoutCancel(ctx)
	cfg.Logger = hclogzap.New(o.Logger.Named("etcd-client"))
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdstore: connect %s: %w", store.Redacted(u), err)
	}
	s, err := New(cli, Config{Prefix: prefix, Logger: o.Logger})
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	s.OnClose(cli.Close)
	return s, nil
}
