package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

// cli holds the global flags and the connection of one invocation.
type cli struct {
	portal portalcli.Conn
	output string
	out    io.Writer
	wait   time.Duration // --wait of the command that runs (0: none)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{out: stdout}
	defer func() { _ = c.portal.Close() }()
	return portalcli.Execute(ctx, c.rootCmd(), args, stdout, stderr)
}

func (c *cli) rootCmd() *cobra.Command {
	root := portalcli.Root("vda", "Manage a VDA cluster through its portal",
		c.dnCmd(), c.pdCmd(), c.cnCmd(), c.daCmd(), c.expCmd(), c.snapCmd(), c.cloneCmd(), c.clusterCmd(), c.eventsCmd(), hostMovedCmd(), certsCmd())
	root.Long = "vda sends requests to a VDA portal: disk nodes (dn), physical disks (pd),\ncontroller nodes (cn), disk arrays (da), exporters (exp),\nsnapshots (snap) and clones (clone) of disk arrays, and the cluster summary.\n" +
		"vda-host, a separate command, acts as a host on the fake SPDK's simulated fabric."
	root.Example = `  vda --addr-port 192.168.0.11:9520 dn list
  vda --addr-port 192.168.0.11:9520 exp get --da-name da0 --exp-name exp0
  vda completion bash > /etc/bash_completion.d/vda`
	f := root.PersistentFlags()
	c.portal.Register(f)
	f.StringVarP(&c.output, "output", "o", "json", "output format: json or table")
	_ = root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"json", "table"}, cobra.ShellCompDirectiveNoFileComp
	})
	return root
}

// hostMovedCmd is what is left of "vda host": the host tool links the fake
// SPDK's fabric, which the operator's CLI does not, so it is its own
// binary now. The old command line says where it went.
func hostMovedCmd() *cobra.Command {
	return &cobra.Command{Use: "host", Short: "Moved to the vda-host command", Hidden: true, DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("%w: the host tool is its own command now: vda-host %s (vda-host --help)",
				portalcli.ErrUsage, strings.Join(args, " "))
		}}
}

// client connects to the portal (once per invocation).
func (c *cli) client() (pb.PortalClient, error) {
	if c.output != "json" && c.output != "table" {
		return nil, fmt.Errorf("%w: --output must be json or table, not %q", portalcli.ErrUsage, c.output)
	}
	return c.portal.Client()
}

// call runs one RPC with the timeout and prints its reply.
func call[R proto.Message](c *cli, cmd *cobra.Command, rpc func(context.Context, pb.PortalClient) (R, error)) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), c.portal.Timeout)
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

// printTable prints a reply's list as rows of its scalar fields (a
// repeated scalar as one cell, space-separated), or a
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
		if fd := md.Fields().Get(i); !fd.IsMap() && fd.Message() == nil {
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
	if l, ok := v.Interface().(protoreflect.List); ok { // repeated scalars (host_nqns): space-separated
		vals := make([]string, l.Len())
		for i := range l.Len() {
			vals[i] = cell(l.Get(i))
		}
		return strings.Join(vals, " ")
	}
	s := fmt.Sprint(v.Interface())
	if s == strings.TrimSpace(s) && utf8.ValidString(s) && strings.IndexFunc(s, notPrintable) < 0 {
		return s
	}
	return strconv.Quote(s)
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
