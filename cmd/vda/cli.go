package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/mtls"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the request failed (the server's message is printed)
	exitUsage = 2 // bad command line
)

var errUsage = errors.New("usage")

// cli holds the global flags and the connection of one invocation.
type cli struct {
	addr    string
	output  string
	timeout time.Duration
	tls     mtls.Config
	plain   bool // --insecure
	conn    *grpc.ClientConn
	out     io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{out: stdout}
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if c.conn != nil {
		_ = c.conn.Close()
	}
	if err == nil {
		return exitOK
	}
	if st, ok := status.FromError(err); ok {
		fmt.Fprintf(stderr, "Error: %s: %s\n", st.Code(), st.Message())
		return exitError
	}
	if errors.As(err, new(failed)) {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	// Anything else was refused before a request was sent: flags,
	// arguments, TLS files.
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return exitUsage
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vda",
		Short:         "Manage a VDA cluster through its portal",
		Long:          "vda sends requests to a VDA portal: disk nodes (dn), physical disks (pd),\ncontroller nodes (cn), disk arrays (da), exporters (exp) and the cluster summary.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE:          unknownSubcommand,
		Example: `  vda --addr-port 192.168.0.11:9520 dn list
  vda --addr-port 192.168.0.11:9520 exp get --da-name da0 --exp-name exp0
  vda completion bash > /etc/bash_completion.d/vda`,
	}
	f := root.PersistentFlags()
	f.StringVar(&c.addr, "addr-port", "127.0.0.1:9520", "portal address (host:port)")
	f.StringVarP(&c.output, "output", "o", "json", "output format: json or table")
	f.DurationVar(&c.timeout, "timeout", 30*time.Second, "request timeout")
	f.StringVar(&c.tls.CertFile, "tls-cert", "", "client certificate (PEM, vda://admin/<name>) for mutual TLS; default: admin.crt in $"+mtls.EnvDir+" or "+mtls.DefaultDir)
	f.StringVar(&c.tls.KeyFile, "tls-key", "", "client key (PEM) of --tls-cert")
	f.StringVar(&c.tls.CAFile, "tls-ca", "", "CA certificate (PEM) that signed the portal's certificate")
	f.BoolVar(&c.plain, "insecure", false, "talk plaintext to a portal started with --insecure")
	_ = root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"json", "table"}, cobra.ShellCompDirectiveNoFileComp
	})
	root.AddCommand(c.dnCmd(), c.pdCmd(), c.cnCmd(), c.daCmd(), c.expCmd(), c.clusterCmd(), c.hostCmd(), certsCmd())
	return root
}

// client connects to the portal (once per invocation).
func (c *cli) client() (pb.PortalClient, error) {
	if c.output != "json" && c.output != "table" {
		return nil, fmt.Errorf("%w: --output must be json or table, not %q", errUsage, c.output)
	}
	if c.conn == nil {
		creds, err := c.creds()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("%w: portal %s: %w", errUsage, c.addr, err)
		}
		c.conn = conn
	}
	return pb.NewPortalClient(c.conn), nil
}

// creds returns the transport to the portal: mutual TLS with the --tls-*
// files or admin.crt in $VDA_TLS_DIR (the portal must present a portal's
// certificate), or plaintext with --insecure.
func (c *cli) creds() (credentials.TransportCredentials, error) {
	f := cmdrun.TLSFlags{Cert: c.tls.CertFile, Key: c.tls.KeyFile, CA: c.tls.CAFile, Insecure: c.plain}
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

// call runs one RPC with the timeout and prints its reply.
func call[R proto.Message](c *cli, cmd *cobra.Command, rpc func(context.Context, pb.PortalClient) (R, error)) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
	defer cancel()
	reply, err := rpc(ctx, cl)
	if err != nil {
		return err
	}
	if c.output == "table" {
		return printTable(c.out, reply.ProtoReflect())
	}
	return printJSON(c.out, reply)
}

func printJSON(w io.Writer, m proto.Message) error {
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// printTable prints a reply's list as rows of its scalar fields, or a
// single object as field/value pairs (nested lists as their own tables).
func printTable(w io.Writer, reply protoreflect.Message) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fields := reply.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList() && fd.Message() != nil:
			writeRows(tw, fd.Message(), reply.Get(fd).List())
		case fd.Message() != nil:
			writeObject(tw, reply.Get(fd).Message())
		case fd.Name() == "next_page_token":
			if tok := reply.Get(fd).String(); tok != "" {
				fmt.Fprintf(tw, "\nnext page token:\t%s\n", cell(reply.Get(fd)))
			}
		case fd.Message() == nil && !fd.IsList():
			fmt.Fprintf(tw, "%s\t%s\n", fd.Name(), cell(reply.Get(fd)))
		}
	}
	return tw.Flush()
}

func scalarFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	var out []protoreflect.FieldDescriptor
	for i := range md.Fields().Len() {
		if fd := md.Fields().Get(i); !fd.IsList() && fd.Message() == nil {
			out = append(out, fd)
		}
	}
	return out
}

func writeRows(tw *tabwriter.Writer, md protoreflect.MessageDescriptor, list protoreflect.List) {
	cols := scalarFields(md)
	names := make([]string, len(cols))
	for i, fd := range cols {
		names[i] = strings.ToUpper(string(fd.Name()))
	}
	fmt.Fprintln(tw, strings.Join(names, "\t"))
	for i := range list.Len() {
		m := list.Get(i).Message()
		vals := make([]string, len(cols))
		for j, fd := range cols {
			vals[j] = cell(m.Get(fd))
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
}

func writeObject(tw *tabwriter.Writer, m protoreflect.Message) {
	for _, fd := range scalarFields(m.Descriptor()) {
		fmt.Fprintf(tw, "%s:\t%s\n", fd.Name(), cell(m.Get(fd)))
	}
	var nested []protoreflect.FieldDescriptor
	for i := range m.Descriptor().Fields().Len() {
		if fd := m.Descriptor().Fields().Get(i); fd.Message() != nil {
			nested = append(nested, fd)
		}
	}
	sort.SliceStable(nested, func(a, b int) bool { return !nested[a].IsList() && nested[b].IsList() })
	for _, fd := range nested {
		if fd.IsList() {
			fmt.Fprintf(tw, "\n%s:\n", fd.Name())
			writeRows(tw, fd.Message(), m.Get(fd).List())
			continue
		}
		for _, sub := range scalarFields(fd.Message()) {
			fmt.Fprintf(tw, "%s.%s:\t%s\n", fd.Name(), sub.Name(), cell(m.Get(fd).Message().Get(sub)))
		}
	}
}

// cell is a value as a table shows it. The portal refuses control
// characters in what it stores, but a table must not let a value move the
// cursor, change colours or break a row whatever a server sends: a value
// with anything but printable characters (or with a space at either end)
// is shown Go-quoted, like strconv.Quote.
func cell(v protoreflect.Value) string {
	s := fmt.Sprint(v.Interface())
	if s == strings.TrimSpace(s) && utf8.ValidString(s) && strings.IndexFunc(s, notPrintable) < 0 {
		return s
	}
	return strconv.Quote(s)
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
