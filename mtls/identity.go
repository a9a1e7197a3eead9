package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Role is what the holder of a certificate may do.
type Role string

// Roles. Each certificate names exactly one.
const (
	// RoleAdmin is an operator's CLI: every portal method.
	RoleAdmin Role = "admin"
	// RolePortal is a portal's server certificate.
	RolePortal Role = "portal"
	// RoleMonitor is a monitor: it drives agents and may call the portal.
	RoleMonitor Role = "monitor"
	// RoleAgent is a node agent; its name is the node's name as registered
	// (host:port of the agent).
	RoleAgent Role = "agent"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RolePortal, RoleMonitor, RoleAgent}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

// Scheme is the URI scheme of identities: vda://<role>/<name>.
const Scheme = "vda"

// maxNameBytes bounds an identity's name (a DNS name plus a port fits).
const maxNameBytes = 255

var (
	// ErrIdentity: a malformed identity, or a certificate without exactly
	// one vda:// URI.
	ErrIdentity = errors.New("mtls: invalid identity")
	// ErrUnauthenticated: the peer presented no verified certificate
	// (plaintext, or no TLS information in the context).
	ErrUnauthenticated = errors.New("mtls: peer not authenticated")
	// ErrWrongPeer: the peer's certificate names another identity than the
	// one expected (ExpectPeer).
	ErrWrongPeer = errors.New("mtls: unexpected peer identity")
)

// Identity is who a certificate names, as its one URI SAN
// vda://<role>/<name>: "vda://agent/192.168.0.14:9720",
// "vda://admin/alice".
type Identity struct {
	Role Role
	Name string
}

// String returns the identity's URI.
func (id Identity) String() string { return id.URL().String() }

// URL returns the identity as the URI a certificate carries.
func (id Identity) URL() *url.URL {
	return &url.URL{Scheme: Scheme, Host: string(id.Role), Path: "/" + id.Name}
}

// Validate checks the role and the name: 1 to 255 bytes of letters,
// digits and . - _ : [ ] @ (a host:port, an IPv6 [addr]:port, a user).
func (id Identity) Validate() error {
	if !id.Role.Valid() {
		return fmt.Errorf("%w: role %q is not one of %v", ErrIdentity, id.Role, Roles)
	}
	if id.Name == "" || len(id.Name) > maxNameBytes {
		return fmt.Errorf("%w: name %q must have 1 to %d bytes", ErrIdentity, id.Name, maxNameBytes)
	}
	for _, r := range id.Name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(".-_:[]@", r):
		default:
			return fmt.Errorf("%w: name %q: character %q is not allowed", ErrIdentity, id.Name, r)
		}
	}
	return nil
}

// ParseIdentity parses vda://<role>/<name>.
func ParseIdentity(s string) (Identity, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	return fromURL(u)
}

func fromURL(u *url.URL) (Identity, error) {
	if u.Scheme != Scheme || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") {
		return Identity{}, fmt.Errorf("%w: %q is not %s://<role>/<name>", ErrIdentity, u.String(), Scheme)
	}
	id := Identity{Role: Role(u.Host), Name: u.Path[1:]}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// IdentityOf returns the identity a certificate names: its one vda:// URI
// SAN. A certificate with none, or several, has no identity.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var found []Identity
	for _, u := range cert.URIs {
		if u.Scheme != Scheme {
			continue
		}
		id, err := fromURL(u)
		if err != nil {
			return Identity{}, err
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("%w: certificate %q has no %s:// URI", ErrIdentity, cert.Subject.CommonName, Scheme)
	case 1:
		return found[0], nil
	default:
		return Identity{}, fmt.Errorf("%w: certificate %q names %d identities", ErrIdentity, cert.Subject.CommonName, len(found))
	}
}

// PeerIdentity returns the identity of the gRPC peer of ctx (a server
// handler's context): the vda:// URI of its verified client certificate.
// Errors wrap ErrUnauthenticated (no verified certificate) or ErrIdentity.
func PeerIdentity(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return Identity{}, fmt.Errorf("%w: no TLS", ErrUnauthenticated)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, fmt.Errorf("%w: %s is not TLS", ErrUnauthenticated, p.AuthInfo.AuthType())
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: no verified client certificate", ErrUnauthenticated)
	}
	return IdentityOf(info.State.VerifiedChains[0][0])
}

// ExpectPeer returns a copy of a client's tc that also requires the
// server's certificate to name want: its role, and its name unless
// want.Name is empty. A monitor dialing node X's agent expects
// {RoleAgent, X}, so an address that reaches another node's agent fails
// the handshake (with an error wrapping ErrWrongPeer in its message).
func ExpectPeer(tc *tls.Config, want Identity) *tls.Config {
	tc = tc.Clone()
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: no certificate, want %s", ErrWrongPeer, want)
		}
		got, err := IdentityOf(cs.PeerCertificates[0])
		if err != nil {
			return fmt.Errorf("%w: want %s: %w", ErrWrongPeer, want, err)
		}
		if got.Role != want.Role || (want.Name != "" && got.Name != want.Name) {
			return fmt.Errorf("%w: the certificate names %s, want %s", ErrWrongPeer, got, want)
		}
		return nil
	}
	return tc
}
