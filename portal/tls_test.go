package portal_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
)

type pki struct {
	t      *testing.T
	dir    string
	name   string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newPKI(t *testing.T, dir, name string) *pki {
	p := &pki{t: t, dir: dir, name: name}
	p.caCert, p.caKey = p.issue(name+"-ca", nil, nil, true)
	return p
}

func (p *pki) write(name string, block *pem.Block) string {
	path := filepath.Join(p.dir, p.name+"-"+name)
	require.NoError(p.t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	return path
}

// issue makes a certificate signed by ca (self-signed if ca is nil).
func (p *pki) issue(cn string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(p.t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(p.t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ca == nil {
		ca, caKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(p.t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(p.t, err)
	return cert, key
}

// files issues a leaf certificate and returns its TLSConfig.
func (p *pki) files(cn string) portal.TLSConfig {
	cert, key := p.issue(cn, p.caCert, p.caKey, false)
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(p.t, err)
	return portal.TLSConfig{
		CertFile: p.write(cn+".pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		KeyFile:  p.write(cn+".key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		CAFile:   p.write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: p.caCert.Raw}),
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	good := newPKI(t, dir, "good")
	server := good.files("server")
	addr := serve(t, newStore(t), portal.Config{TLS: server})
	ctx := context.Background()
	req := &pb.GetDnRequest{DnName: "x"}

	tc, err := portal.ClientTLS(good.files("client"))
	require.NoError(t, err)
	_, err = dial(t, addr, credentials.NewTLS(tc)).GetDn(ctx, req)
	require.Equal(t, codes.NotFound, status.Code(err), "a trusted client reaches the handler: %v", err)

	// A client certificate from another CA is refused.
	evil := newPKI(t, dir, "evil").files("client")
	evil.CAFile = server.CAFile // it does trust the server
	etc, err := portal.ClientTLS(evil)
	require.NoError(t, err)
	_, err = dial(t, addr, credentials.NewTLS(etc)).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// So are a client without a certificate and a plaintext one.
	_, err = dial(t, addr, credentials.NewTLS(&tls.Config{RootCAs: tc.RootCAs, MinVersion: tls.VersionTLS12})).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = dial(t, addr, insecure.NewCredentials()).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	_, err = portal.New(portal.Config{})
	require.ErrorIs(t, err, portal.ErrConfig)
	_, err = portal.ServerTLS(portal.TLSConfig{CertFile: "x"})
	require.ErrorIs(t, err, portal.ErrConfig)
}
