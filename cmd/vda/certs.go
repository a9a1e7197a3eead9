package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/mtls"
)

const certsLong = `Every VDA connection is mutual TLS: each side presents a certificate signed
by one CA that names exactly one identity, vda://<role>/<name>:

  admin     the CLI of an operator: reads and changes the cluster through the portal
  portal    a portal's server certificate (with the IP or DNS name clients dial)
  monitor   a monitor: drives the agents, may call the portal
  agent     the agent of one node; --name is the node's name as registered
            (192.168.0.14:9720), and it refuses desired state for any other node

Make a CA once, then one directory per server, and copy each to that
server's /etc/vda/tls (or point VDA_TLS_DIR at it): the binaries find
ca.crt, <role>.crt and <role>.key there without flags. Keep the CA's
directory (ca.key) off the servers.`

// certsCmd is "vda certs": the CA and role certificates of package mtls.
func certsCmd() *cobra.Command {
	g := portalcli.Group("certs", "Make the CA and the role certificates every VDA connection needs")
	g.Long = certsLong
	g.AddCommand(certsInitCmd(), certsIssueCmd(), certsShowCmd())
	return g
}

func certsInitCmd() *cobra.Command {
	var dir string
	var days int
	var force bool
	cmd := &cobra.Command{Use: "init", Short: "Create a CA (ca.crt, ca.key) in --dir", Args: cobra.NoArgs,
		Example: "  vda certs init --dir ./vda-ca",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 1 {
				return fmt.Errorf("%w: --days %d is not positive", portalcli.ErrUsage, days)
			}
			ca, err := mtls.NewCA("VDA CA", time.Duration(days)*24*time.Hour)
			if err != nil {
				return portalcli.Failed{Err: err}
			}
			if err := ca.WriteFiles(dir, force); err != nil {
				return certsErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (keep it off the servers), valid until %s\n",
				filepath.Join(dir, mtls.CACertFile), filepath.Join(dir, mtls.CAKeyFile), ca.Cert.NotAfter.Format(time.DateOnly))
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory of the CA (created 0700)")
	f.IntVar(&days, "days", 3650, "validity in days")
	f.BoolVar(&force, "force", false, "replace an existing CA (every certificate it issued stops being trusted)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// issueOpts are the flags of "certs issue".
type issueOpts struct {
	dir, out, role, name string
	ips, dns             []string
	days                 int
	force                bool
}

func certsIssueCmd() *cobra.Command {
	var o issueOpts
	cmd := &cobra.Command{Use: "issue", Short: "Issue a role certificate (ca.crt, <role>.crt, <role>.key in --out)", Args: cobra.NoArgs,
		Long: "Issue a certificate naming vda://<role>/<name>, signed by the CA in --dir, and write it with its key\n" +
			"(0600) and the CA's certificate into --out, ready to be copied to a server's /etc/vda/tls.\n\n" + certsLong,
		Example: `  vda certs issue --dir ./vda-ca --role portal  --ip 192.168.0.11 --out ./tls/portal
  vda certs issue --dir ./vda-ca --role monitor --ip 192.168.0.12 --out ./tls/monitor
  vda certs issue --dir ./vda-ca --role agent   --name 192.168.0.14:9720 --out ./tls/dn0   # --ip from --name
  vda certs issue --dir ./vda-ca --role admin   --name alice --out ~/.vda/tls`,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) }}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "directory of the CA (vda certs init)")
	f.StringVar(&o.out, "out", "", "directory to write into (default: --dir)")
	f.StringVar(&o.role, "role", "", "admin, portal, monitor or agent")
	f.StringVar(&o.name, "name", "", "the identity's name: for an agent its node's name (host:port of the agent; required); "+
		"default: the role")
	f.StringSliceVar(&o.ips, "ip", nil, "IP address the server serves on (repeatable; an agent's default: the host of --name)")
	f.StringSliceVar(&o.dns, "dns", nil, "DNS name the server serves on (repeatable)")
	f.IntVar(&o.days, "days", 365, "validity in days")
	f.BoolVar(&o.force, "force", false, "replace existing files")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"admin", "portal", "monitor", "agent"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func (o *issueOpts) run(cmd *cobra.Command) error {
	req, err := o.request()
	if err != nil {
		return fmt.Errorf("%w: %w", portalcli.ErrUsage, err)
	}
	ca, err := mtls.LoadCA(filepath.Join(o.dir, mtls.CACertFile), filepath.Join(o.dir, mtls.CAKeyFile))
	if err != nil {
		return portalcli.Failed{Err: fmt.Errorf("%w (make one with vda certs init --dir %s)", err, o.dir)}
	}
	out := o.out
	if out == "" {
		out = o.dir
	}
	cfg, err := ca.IssueFiles(out, req, o.force)
	if err != nil {
		return certsErr(err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "wrote %s, %s and %s for %s (ip %s, dns %s)\n", cfg.CAFile, cfg.CertFile, cfg.KeyFile,
		req.Identity, joinIPs(req.IPs), orNone(req.DNSNames))
	if out == o.dir {
		fmt.Fprintf(w, "note: %s also holds the CA's key; give each server its own --out directory\n", out)
	}
	return nil
}

// request checks the flags and builds the certificate request.
func (o *issueOpts) request() (mtls.CertRequest, error) {
	id := mtls.Identity{Role: mtls.Role(o.role), Name: o.name}
	if !id.Role.Valid() {
		return mtls.CertRequest{}, fmt.Errorf("--role %q is not admin, portal, monitor or agent", o.role)
	}
	if o.days < 1 {
		return mtls.CertRequest{}, fmt.Errorf("--days %d is not positive", o.days)
	}
	req := mtls.CertRequest{Identity: id, DNSNames: o.dns, Validity: time.Duration(o.days) * 24 * time.Hour}
	for _, s := range o.ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return req, fmt.Errorf("--ip %q is not an IP address", s)
		}
		req.IPs = append(req.IPs, ip)
	}
	switch id.Role {
	case mtls.RoleAgent:
		host, port, err := net.SplitHostPort(o.name)
		if err != nil || host == "" {
			return req, fmt.Errorf("--name %q: an agent's name is its node's name, host:port of the agent (192.168.0.14:9720)", o.name)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return req, fmt.Errorf("--name %q: port %q is not a port", o.name, port)
		}
		if len(req.IPs) == 0 && len(req.DNSNames) == 0 {
			if ip := net.ParseIP(host); ip != nil {
				req.IPs = []net.IP{ip}
			} else {
				req.DNSNames = []string{host}
			}
		}
	case mtls.RolePortal:
		if len(req.IPs) == 0 && len(req.DNSNames) == 0 {
			return req, errors.New("a portal's certificate needs the --ip or --dns its clients dial")
		}
	}
	if req.Identity.Name == "" {
		req.Identity.Name = string(id.Role)
	}
	return req, req.Identity.Validate()
}

func joinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return orNone(s)
}

// orNone joins s with commas, or says "-".
func orNone(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// certsErr tells how to overwrite existing files.
func certsErr(err error) error {
	if errors.Is(err, mtls.ErrExists) {
		return portalcli.Failed{Err: fmt.Errorf("%w (--force replaces it)", err)}
	}
	return portalcli.Failed{Err: err}
}

func certsShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show FILE...", Short: "Print the identity, addresses and validity of certificates",
		Example: "  vda certs show /etc/vda/tls/agent.crt", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			for _, file := range files {
				cert, err := mtls.ReadCertificate(file)
				if err != nil {
					return portalcli.Failed{Err: err}
				}
				id, err := mtls.IdentityOf(cert)
				who := id.String()
				if err != nil {
					who = "no identity: " + err.Error()
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s ip %s dns %s valid %s to %s ca %v\n", file, who, joinIPs(cert.IPAddresses),
					orNone(cert.DNSNames), cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly), cert.IsCA)
			}
			return nil
		}}
	return cmd
}
