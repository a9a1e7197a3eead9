package mtls

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Where binaries look for their certificates when no --tls-* flag is given.
const (
	// EnvDir names the environment variable that overrides DefaultDir.
	EnvDir = "VDA_TLS_DIR"
	// DefaultDir is where `vda certs issue --out` output is copied to on
	// every server.
	DefaultDir = "/etc/vda/tls"
)

// ErrNoCertificates: Discover found none of a role's files.
var ErrNoCertificates = errors.New("mtls: no certificates")

// Dir returns $VDA_TLS_DIR, or DefaultDir when it is unset or empty.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return DefaultDir
}

// Discover returns Files(dir, role) when ca.crt, <role>.crt and
// <role>.key all exist in dir. When none does it returns an error wrapping
// ErrNoCertificates; when only some do, one wrapping ErrConfig that names
// the missing ones (half a setup is a mistake, not a choice).
func Discover(dir string, role Role) (Config, error) {
	cfg := Files(dir, role)
	var missing []string
	for _, p := range []string{cfg.CAFile, cfg.CertFile, cfg.KeyFile} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
		} else if err != nil {
			return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	switch len(missing) {
	case 0:
		return cfg, nil
	case 3:
		return cfg, fmt.Errorf("%w: no %s, %s.crt or %s.key in %s", ErrNoCertificates, CACertFile, role, role, dir)
	default:
		return cfg, fmt.Errorf("%w: missing %s", ErrConfig, strings.Join(missing, ", "))
	}
}

// Hint tells an operator how to give a binary of role its certificates,
// for the error of a binary that found none.
func Hint(role Role, example string) string {
	return fmt.Sprintf("create them with `vda certs init --dir ./vda-ca` then "+
		"`vda certs issue --dir ./vda-ca --role %s %s--out %s` and copy that directory to this server, "+
		"or name them with --tls-cert, --tls-key and --tls-ca, or point %s at their directory; "+
		"or pass --insecure to run without authentication (anyone who reaches the port can then use it)",
		role, example, DefaultDir, EnvDir)
}
