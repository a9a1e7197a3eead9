package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

const host = "vda --addr-port 192.168.0.11:9520"

// optString returns the flag's value if it was given, nil otherwise.
func optString(cmd *cobra.Command, name string) *string {
	if !cmd.Flags().Changed(name) {
		return nil
	}
	v, _ := cmd.Flags().GetString(name)
	return &v
}

func optBool(cmd *cobra.Command, name string) *bool {
	if !cmd.Flags().Changed(name) {
		return nil
	}
	v, _ := cmd.Flags().GetBool(name)
	return &v
}

func pageFlags(f *pflag.FlagSet, p *pb.Page) {
	f.Int32Var(&p.Limit, "limit", 0, "page size (0: the server's default)")
	f.StringVar(&p.PageToken, "page-token", "", "next_page_token of the previous page")
}

func (c *cli) dnCmd() *cobra.Command {
	var cr pb.CreateDnRequest
	var name string
	var list pb.ListDnRequest
	list.Page = &pb.Page{}
	nameFlag := func(f *pflag.FlagSet) { f.StringVar(&name, "dn-name", "", "disk node name (host:port of its agent)") }
	return portalcli.Group("dn", "Disk nodes",
		portalcli.Leaf("create", "Add a disk node",
			host+` dn create --dn-name 192.168.0.14:9720 --dn-listener-conf '{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}' --location 192.168.0.14:9720`,
			func(f *pflag.FlagSet) {
				f.StringVar(&cr.DnName, "dn-name", "", "disk node name (host:port of its agent, unless --address)")
				f.StringVar(&cr.DnAddress, "address", "", "host:port of its agent, when the name is not (default: the name)")
				f.StringVar(&cr.DnListenerConf, "dn-listener-conf", "", "NVMe-oF listener JSON")
				f.StringVar(&cr.Location, "location", "", "failure domain")
				f.StringVar(&cr.Description, "description", "", "free text")
			}, []string{"dn-name", "dn-listener-conf"},
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.DnReply, error) { return p.CreateDn(ctx, &cr) })
			}),
		portalcli.Leaf("get", "Show a disk node", host+" dn get --dn-name 192.168.0.14:9720", nameFlag, []string{"dn-name"},
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.DnReply, error) {
					return p.GetDn(ctx, &pb.GetDnRequest{DnName: name})
				})
			}),
		portalcli.Leaf("list", "List disk nodes", host+" dn list --limit 10", func(f *pflag.FlagSet) { pageFlags(f, list.Page) }, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ListDnReply, error) { return p.ListDn(ctx, &list) })
			}),
		portalcli.Leaf("modify", "Change a disk node", host+" dn modify --dn-name 192.168.0.14:9720 --offline",
			func(f *pflag.FlagSet) {
				nameFlag(f)
				f.String("description", "", "free text")
				f.String("address", "", "host:port of its agent (\"\": its name)")
				f.String("dn-listener-conf", "", "NVMe-oF listener JSON")
				f.String("location", "", "failure domain")
				f.Bool("offline", false, "take the node out of service (--offline=false to return it)")
			}, []string{"dn-name"},
			func(cmd *cobra.Command) error {
				r := &pb.ModifyDnRequest{DnName: name, Description: optString(cmd, "description"),
					DnListenerConf: optString(cmd, "dn-listener-conf"), Location: optString(cmd, "location"), Offline: optBool(cmd, "offline"),
					DnAddress: optString(cmd, "address")}
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.DnReply, error) { return p.ModifyDn(ctx, r) })
			}),
		portalcli.Leaf("delete", "Remove a disk node without physical disks", host+" dn delete --dn-name 192.168.0.14:9720", nameFlag, []string{"dn-name"},
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.DeleteReply, error) {
					return p.DeleteDn(ctx, &pb.DeleteDnRequest{DnName: name})
				})
			}),
		unbindCmd("dn", nameFlag, func(cmd *cobra.Command) error {
			return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.UnbindReply, error) {
				return p.UnbindDn(ctx, &pb.UnbindDnRequest{DnName: name})
			})
		}),
	)
}

// unbindCmd is "dn unbind" or "cn unbind".
func unbindCmd(kind string, flags func(*pflag.FlagSet), do func(*cobra.Command) error) *cobra.Command {
	name, port := "192.168.0.14:9720", "--dn-name"
	if kind == "cn" {
		name, port = "192.168.0.16:9820", "--cn-name"
	}
	cmd := portalcli.Leaf("unbind", "Forget the agent a node is bound to (after its agent ID legitimately changed)",
		host+" "+kind+" unbind "+port+" "+name, flags, []string{kind + "-name"}, do)
	cmd.Long = `The monitor binds every node to the ID of the agent it first reaches at the
node's address (the agent keeps it in its --state-dir), and drives the node
only through that agent: an address that reaches another node's agent, or an
agent whose ID changed, is not synced and the node's status says why.

When the change is legitimate (the agent's state directory was lost, the
machine was replaced, the agent runs without --state-dir and restarted),
check that the address reaches the right server, then unbind the node: the
monitor binds it to the agent it reaches next and drives it again.
Nothing does this automatically.`
	return cmd
}

func (c *cli) pdCmd() *cobra.Command {
	var cr pb.CreatePdRequest
	var dn, name string
	list := pb.ListPdRequest{Page: &pb.Page{}}
	names := func(f *pflag.FlagSet) {
		f.StringVar(&dn, "dn-name", "", "disk node name")
		f.StringVar(&name, "pd-name", "", "physical disk name")
	}
	both := []string{"dn-name", "pd-name"}
	return portalcli.Group("pd", "Physical disks",
		portalcli.Leaf("create", "Add a physical disk to a disk node",
			host+` pd create --dn-name 192.168.0.14:9720 --pd-name pd0 --pd-conf '{"type":"malloc","size":134217728}'`,
			func(f *pflag.FlagSet) {
				f.StringVar(&cr.DnName, "dn-name", "", "disk node name")
				f.StringVar(&cr.PdName, "pd-name", "", "physical disk name")
				f.StringVar(&cr.PdConf, "pd-conf", "", `bdev JSON: {"type":"malloc","size":N}, {"type":"aio","filename":"/dev/sdb"} or {"type":"nvme","traddr":"0000:01:00.0"}`)
				f.StringVar(&cr.Description, "description", "", "free text")
				f.BoolVar(&cr.Force, "force", false, "aio only: let the disk node format a device that holds other data (it refuses one that is neither blank nor this PD's)")
			}, []string{"dn-name", "pd-name", "pd-conf"},
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.PdReply, error) { return p.CreatePd(ctx, &cr) })
			}),
		portalcli.Leaf("get", "Show a physical disk", host+" pd get --dn-name 192.168.0.14:9720 --pd-name pd0", names, both,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.PdReply, error) {
					return p.GetPd(ctx, &pb.GetPdRequest{DnName: dn, PdName: name})
				})
			}),
		portalcli.Leaf("list", "List physical disks (of one disk node with --dn-name)", host+" pd list --dn-name 192.168.0.14:9720",
			func(f *pflag.FlagSet) {
				f.StringVar(&list.DnName, "dn-name", "", "disk node name (default: all)")
				pageFlags(f, list.Page)
			}, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ListPdReply, error) { return p.ListPd(ctx, &list) })
			}),
		portalcli.Leaf("modify", "Change a physical disk", host+" pd modify --dn-name 192.168.0.14:9720 --pd-name pd0 --offline",
			func(f *pflag.FlagSet) {
				names(f)
				f.String("description", "", "free text")
				f.Bool("offline", false, "take the disk out of service for new arrays")
			}, both,
			func(cmd *cobra.Command) error {
				r := &pb.ModifyPdRequest{DnName: dn, PdName: name, Description: optString(cmd, "description"), Offline: optBool(cmd, "offline")}
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.PdReply, error) { return p.ModifyPd(ctx, r) })
			}),
		portalcli.Leaf("delete", "Remove a physical disk without virtual disks", host+" pd delete --dn-name 192.168.0.14:9720 --pd-name pd0", names, both,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.DeleteReply, error) {
					return p.DeletePd(ctx, &pb.DeletePdRequest{DnName: dn, PdName: name})
				})
			}),
	)
}
