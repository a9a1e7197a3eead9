package portalcli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/mtls"
)

// Conn is how a client reaches the portal: its flags (Register) and the
// connection it makes on first use. Close it when the invocation ends.
type Conn struct {
	Addr     string
	Timeout  time.Duration
	TLS      mtls.Config
	Insecure bool // plaintext, to a portal started with --insecure

	conn *grpc.ClientConn
}

// Register adds --addr-port, --timeout, --tls-cert, --tls-key, --tls-ca
// and --insecure to f (a root command's persistent flags).
func (c *Conn) Register(f *pflag.FlagSet) {
	f.StringVar(&c.Addr, "addr-port", "127.0.0.1:9520", "portal address (host:port)")
	f.DurationVar(&c.Timeout, "timeout", 30*time.Second, "request timeout")
	f.StringVar(&c.TLS.CertFile, "tls-cert", "", "client certificate (PEM, vda://admin/<name>) for mutual TLS; default: admin.crt in $"+mtls.EnvDir+" or "+mtls.DefaultDir)
	f.StringVar(&c.TLS.KeyFile, "tls-key", "", "client key (PEM) of --tls-cert")
	f.StringVar(&c.TLS.CAFile, "tls-ca", "", "CA certificate (PEM) that signed the portal's certificate")
	f.BoolVar(&c.Insecure, "insecure", false, "talk plaintext to a portal started with --insecure")
}

// Client connects to the portal (once per Conn). A bad address or missing
// or unusable TLS files are usage errors.
func (c *Conn) Client() (pb.PortalClient, error) {
	if c.conn == nil {
		creds, err := c.creds()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("%w: portal %s: %w", ErrUsage, c.Addr, err)
		}
		c.conn = conn
	}
	return pb.NewPortalClient(c.conn), nil
}

// Close closes the connection, if Client made one.
func (c *Conn) Close() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// creds returns the transport to the portal: mutual TLS with the --tls-*
// files or admin.crt in $VDA_TLS_DIR (the portal must present a portal's
// certificate), or plaintext with --insecure.
func (c *Conn) creds() (credentials.TransportCredentials, error) {
	f := cmdrun.TLSFlags{Cert: c.TLS.CertFile, Key: c.TLS.KeyFile, CA: c.TLS.CAFile, Insecure: c.Insecure}
	cfg, plain, err := f.Resolve(mtls.RoleAdmin, "")
	if errors.Is(err, mtls.ErrNoCertificates) {
		return nil, fmt.Errorf("no admin certificate in %s: make one with `vda certs issue --dir ./vda-ca --role admin "+
			"--name $USER --out ~/.vda/tls` and `export %s=~/.vda/tls`, or name it with --tls-cert, --tls-key and "+
			"--tls-ca; --insecure talks to a portal started with --insecure", mtls.Dir(), mtls.EnvDir)
	}
	if err != nil {
		return nil, err
	}
	if plain {
		return insecure.NewCredentials(), nil
	}
	tc, err := cfg.ClientTLS()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(mtls.ExpectPeer(tc, mtls.Identity{Role: mtls.RolePortal})), nil
}
