package mtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vda-io/vda/internal/atomicfile"
)

// Validity defaults of NewCA and CA.Issue.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
)

// File names of a TLS directory (Files, Discover).
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// ErrExists: a file to write exists and overwriting was not asked for.
var ErrExists = errors.New("mtls: file exists")

// CA is a certificate authority that issues VDA certificates: ECDSA P-256
// keys, one vda://<role>/<name> URI SAN per certificate.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA named name, valid for validity
// (DefaultCAValidity if 0).
func NewCA(name string, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	tmpl, err := template(name, validity)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA, tmpl.MaxPathLenZero = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("mtls: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA's certificate and key (PEM, as WriteFiles writes them).
func LoadCA(certFile, keyFile string) (*CA, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cert, err := parseCertPEM(cb)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, certFile, err)
	}
	block, _ := pem.Decode(kb)
	if block == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block", ErrConfig, keyFile)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, keyFile, err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: %s is not a CA certificate of the key %s", ErrConfig, certFile, keyFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM returns the CA key as PEM.
func (ca *CA) KeyPEM() ([]byte, error) { return keyPEM(ca.Key) }

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// CertRequest is what CA.Issue puts in a certificate.
type CertRequest struct {
	// Identity is the certificate's one vda:// URI SAN (required).
	Identity Identity
	// IPs and DNSNames are the addresses a server certificate serves on
	// (clients check the one they dialed).
	IPs      []net.IP
	DNSNames []string
	// Validity is how long the certificate is valid (DefaultCertValidity
	// if 0).
	Validity time.Duration
}

// Issue returns a certificate and its new ECDSA P-256 key, both PEM,
// signed by ca. Every certificate may serve and be a client (a monitor is
// both; so is an agent its monitor reaches).
func (ca *CA) Issue(req CertRequest) (certPEM, keyPEMBytes []byte, err error) {
	if err := req.Identity.Validate(); err != nil {
		return nil, nil, err
	}
	if req.Validity <= 0 {
		req.Validity = DefaultCertValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: %w", err)
	}
	tmpl, err := template(req.Identity.String(), req.Validity)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.URIs = append(tmpl.URIs, req.Identity.URL())
	tmpl.IPAddresses, tmpl.DNSNames = req.IPs, req.DNSNames
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: issue %s: %w", req.Identity, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
}

func template(cn string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"VDA"}},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(validity),
		BasicConstraintsValid: true,
	}, nil
}

// Files is the Config of role in a TLS directory: dir/<role>.crt,
// dir/<role>.key and dir/ca.crt.
func Files(dir string, role Role) Config {
	return Config{CertFile: filepath.Join(dir, string(role)+".crt"), KeyFile: filepath.Join(dir, string(role)+".key"),
		CAFile: filepath.Join(dir, CACertFile)}
}

// WriteFiles writes the CA's certificate (ca.crt, 0644) and key (ca.key,
// 0600) into dir, which it creates (0700) if needed. Existing files are an
// error wrapping ErrExists unless overwrite.
func (ca *CA) WriteFiles(dir string, overwrite bool) error {
	kp, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	if !overwrite {
		if err := absent(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(dir, CAKeyFile), kp, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o644)
}

// IssueFiles issues a certificate for req and writes it as dir/<role>.crt
// (0644) and dir/<role>.key (0600), with the CA's certificate as
// dir/ca.crt: a directory ready to be copied to a server's /etc/vda/tls.
// Existing files are an error wrapping ErrExists unless overwrite (a
// ca.crt identical to the CA's is kept).
func (ca *CA) IssueFiles(dir string, req CertRequest, overwrite bool) (Config, error) {
	if err := req.Identity.Validate(); err != nil {
		return Config{}, err
	}
	cfg := Files(dir, req.Identity.Role)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cfg, fmt.Errorf("mtls: %w", err)
	}
	sameCA := false
	if b, err := os.ReadFile(cfg.CAFile); err == nil {
		sameCA = bytes.Equal(b, ca.CertPEM())
	}
	if !overwrite {
		check := []string{cfg.CertFile, cfg.KeyFile}
		if !sameCA {
			check = append(check, cfg.CAFile)
		}
		if err := absent(check...); err != nil {
			return cfg, err
		}
	}
	cert, key, err := ca.Issue(req)
	if err != nil {
		return cfg, err
	}
	if err := writeFile(cfg.KeyFile, key, 0o600); err != nil {
		return cfg, err
	}
	if err := writeFile(cfg.CertFile, cert, 0o644); err != nil {
		return cfg, err
	}
	if !sameCA {
		return cfg, writeFile(cfg.CAFile, ca.CertPEM(), 0o644)
	}
	return cfg, nil
}

func absent(paths ...string) error {
	for _, p := range paths {
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("%w: %s", ErrExists, p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mtls: %w", err)
		}
	}
	return nil
}

// writeFile replaces path with data (mode perm, also when it existed with
// another mode), durably (atomicfile.Write).
func writeFile(path string, data []byte, perm os.FileMode) error {
	if err := atomicfile.Write(path, data, perm); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	return nil
}
