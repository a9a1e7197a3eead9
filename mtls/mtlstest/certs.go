package mtlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vda-io/vda/mtls"
)

// WriteCerts creates a CA in dir and issues a server certificate (for
// 127.0.0.1, ::1 and localhost) and a client certificate, valid for a day.
// Each returned Config names its certificate, its key and the CA.
func WriteCerts(dir string) (server, client mtls.Config, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return server, client, err
	}
	caTmpl := template("vda test CA")
	caTmpl.IsCA, caTmpl.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return server, client, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return server, client, err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := writePEM(caFile, "CERTIFICATE", caDER); err != nil {
		return server, client, err
	}
	if server, err = issue(dir, "server", ca, caKey); err != nil {
		return server, client, err
	}
	client, err = issue(dir, "client", ca, caKey)
	server.CAFile, client.CAFile = caFile, caFile
	return server, client, err
}

func template(cn string) *x509.Certificate {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		serial = big.NewInt(time.Now().UnixNano())
	}
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
	}
}

func issue(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (mtls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return mtls.Config{}, err
	}
	tmpl := template(name)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	tmpl.DNSNames = []string{"localhost"}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return mtls.Config{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return mtls.Config{}, err
	}
	c := mtls.Config{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key")}
	if err := writePEM(c.CertFile, "CERTIFICATE", der); err != nil {
		return c, err
	}
	return c, writePEM(c.KeyFile, "EC PRIVATE KEY", keyDER)
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("mtlstest: %w", err)
	}
	return nil
}
