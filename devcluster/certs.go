package devcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"

	"github.com/vda-io/vda/mtls"
)

// TLSDir is the directory of the cluster's CA (ca.crt, ca.key) and of the
// admin, portal and monitor certificates, laid out as mtls.Files: point
// VDA_TLS_DIR at it and the vda CLI finds admin.crt. "" with Insecure.
func (c *Cluster) TLSDir() string {
	if c.cfg.Insecure {
		return ""
	}
	return filepath.Join(c.cfg.DataDir, "tls")
}

// AdminTLS is the operator's (CLI's) side of mutual TLS with the portal;
// the zero Config with Insecure.
func (c *Cluster) AdminTLS() mtls.Config {
	if c.cfg.Insecure {
		return mtls.Config{}
	}
	return mtls.Files(c.TLSDir(), mtls.RoleAdmin)
}

// tlsOf returns the Config of role in the cluster's TLS directory.
func (c *Cluster) tlsOf(role mtls.Role) mtls.Config {
	if c.cfg.Insecure {
		return mtls.Config{}
	}
	return mtls.Files(c.TLSDir(), role)
}

// makeCerts loads the cluster's CA (or creates it on the first run) and
// issues the admin, portal and monitor certificates, and an agent
// certificate per node naming the node (its address may change between
// runs with AnyPorts). Certificates are issued anew on every run.
func (c *Cluster) makeCerts() error {
	if c.cfg.Insecure {
		return nil
	}
	dir := c.TLSDir()
	ca, err := mtls.LoadCA(filepath.Join(dir, mtls.CACertFile), filepath.Join(dir, mtls.CAKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = mtls.NewCA("VDA dev cluster CA", 0); err == nil {
			err = ca.WriteFiles(dir, false)
		}
	}
	if err != nil {
		return fmt.Errorf("devcluster: CA: %w", err)
	}
	portalIP := net.ParseIP(c.cfg.IPPrefix + "11")
	for _, req := range []mtls.CertRequest{
		{Identity: mtls.Identity{Role: mtls.RoleAdmin, Name: "admin"}},
		{Identity: mtls.Identity{Role: mtls.RolePortal, Name: "portal"}, IPs: []net.IP{portalIP}, DNSNames: []string{"localhost"}},
		{Identity: mtls.Identity{Role: mtls.RoleMonitor, Name: "dev-monitor"}},
	} {
		if _, err := ca.IssueFiles(dir, req, true); err != nil {
			return fmt.Errorf("devcluster: %w", err)
		}
	}
	for _, n := range c.Nodes() {
		req := mtls.CertRequest{Identity: mtls.Identity{Role: mtls.RoleAgent, Name: n.Name()}, IPs: []net.IP{net.ParseIP(n.IP)}}
		if _, err := ca.IssueFiles(n.tlsDir(), req, true); err != nil {
			return fmt.Errorf("devcluster: %s: %w", n.ShortName(), err)
		}
	}
	return nil
}
