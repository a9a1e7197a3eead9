package cmdrun

import (
	"errors"
	"flag"
	"fmt"

	"github.com/vda-io/vda/mtls"
)

// TLSFlags are the TLS flags of every binary: --tls-cert, --tls-key,
// --tls-ca and --insecure.
type TLSFlags struct {
	Cert, Key, CA string
	Insecure      bool
}

// Register adds the flags to fs; cert describes this side's certificate.
func (f *TLSFlags) Register(fs *flag.FlagSet, cert string) {
	fs.StringVar(&f.Cert, "tls-cert", "", cert+" (PEM); default: <role>.crt in $"+mtls.EnvDir+" or "+mtls.DefaultDir)
	fs.StringVar(&f.Key, "tls-key", "", "key (PEM) of --tls-cert")
	fs.StringVar(&f.CA, "tls-ca", "", "CA certificate (PEM) of every peer; default: ca.crt beside the certificate")
	fs.BoolVar(&f.Insecure, "insecure", false, "INSECURE: no TLS, no authentication: anyone who reaches the port can use it")
}

// Resolve returns the mutual TLS to use for role: the --tls-* files when
// given, otherwise ca.crt, <role>.crt and <role>.key in $VDA_TLS_DIR (or
// /etc/vda/tls). With --insecure it returns the zero Config and true. No
// certificates and no --insecure is an error that tells how to make them;
// example completes `vda certs issue --role <role> ` for this binary.
func (f TLSFlags) Resolve(role mtls.Role, example string) (mtls.Config, bool, error) {
	explicit := mtls.Config{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA}
	if f.Insecure {
		if explicit.Enabled() {
			return mtls.Config{}, false, errors.New("--insecure and --tls-cert/--tls-key/--tls-ca exclude each other")
		}
		return mtls.Config{}, true, nil
	}
	if explicit.Enabled() {
		if err := explicit.Validate(); err != nil {
			return explicit, false, fmt.Errorf("%w (--tls-cert, --tls-key and --tls-ca go together)", err)
		}
		return explicit, false, nil
	}
	dir := mtls.Dir()
	cfg, err := mtls.Discover(dir, role)
	if errors.Is(err, mtls.ErrNoCertificates) {
		return cfg, false, fmt.Errorf("%w; %s", err, mtls.Hint(role, example))
	}
	return cfg, false, err
}
