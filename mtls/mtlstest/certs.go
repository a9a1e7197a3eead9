package mtlstest

import (
	"net"
	"path/filepath"
	"strings"

	"github.com/vda-io/vda/mtls"
)

// CA is a throwaway certificate authority whose certificates live under
// Dir, valid for a day.
type CA struct {
	Dir string
	ca  *mtls.CA
}

// NewCA creates a CA in dir.
func NewCA(dir string) (*CA, error) {
	ca, err := mtls.NewCA("vda test CA", 0)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(dir, false); err != nil {
		return nil, err
	}
	return &CA{Dir: dir, ca: ca}, nil
}

// CA returns the underlying authority.
func (c *CA) CA() *mtls.CA { return c.ca }

// Issue writes a certificate naming vda://role/name, valid for 127.0.0.1,
// ::1 and localhost and for ips, into a directory of its own under Dir
// (laid out as mtls.Files), and returns its Config.
func (c *CA) Issue(role mtls.Role, name string, ips ...net.IP) (mtls.Config, error) {
	dir := filepath.Join(c.Dir, string(role)+"-"+strings.NewReplacer(":", "_", "[", "_", "]", "_").Replace(name))
	return c.ca.IssueFiles(dir, mtls.CertRequest{
		Identity: mtls.Identity{Role: role, Name: name},
		IPs:      append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...),
		DNSNames: []string{"localhost"},
	}, true)
}
