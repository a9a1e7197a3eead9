package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ErrConfig is returned for an incomplete Config or unreadable PEM files.
var ErrConfig = errors.New("mtls: invalid config")

// Config names PEM files. All empty means plaintext; CertFile and KeyFile
// are this side's certificate and key, CAFile the CA that signs the other
// side's certificate, which must then present one (mutual TLS).
type Config struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// Enabled reports whether any file is set.
func (c Config) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" }

// Validate reports whether the Config is plaintext (nothing set) or
// complete (everything set). It does not read the files.
func (c Config) Validate() error {
	if c.Enabled() && (c.CertFile == "" || c.KeyFile == "" || c.CAFile == "") {
		return fmt.Errorf("%w: TLS needs a certificate, a key and a CA", ErrConfig)
	}
	return nil
}

func (c Config) load() (tls.Certificate, *x509.CertPool, error) {
	if !c.Enabled() {
		return tls.Certificate{}, nil, fmt.Errorf("%w: TLS needs a certificate, a key and a CA", ErrConfig)
	}
	if err := c.Validate(); err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("%w: no certificate in %s", ErrConfig, c.CAFile)
	}
	return cert, pool, nil
}

// ServerTLS returns the server side of mutual TLS: it presents CertFile and
// accepts only clients whose certificate CAFile signed.
func (c Config) ServerTLS() (*tls.Config, error) {
	cert, pool, err := c.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// Identity returns the identity CertFile names (IdentityOf).
func (c Config) Identity() (Identity, error) {
	cert, err := ReadCertificate(c.CertFile)
	if err != nil {
		return Identity{}, err
	}
	return IdentityOf(cert)
}

// ReadCertificate reads the first certificate of a PEM file.
func ReadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cert, err := parseCertPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	return cert, nil
}

// ClientTLS returns the client side of mutual TLS: it presents CertFile and
// trusts only servers whose certificate CAFile signed.
func (c Config) ClientTLS() (*tls.Config, error) {
	cert, pool, err := c.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
