package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

func (c *cli) cnCmd() *cobra.Command {
	var cr pb.CreateCnRequest
	var name string
	list := pb.ListCnRequest{Page: &pb.Page{}}
	nameFlag := func(f *pflag.FlagSet) {
		f.StringVar(&name, "cn-name", "", "controller node name (host:port of its agent)")
	}
	return portalcli.Group("cn", "Controller nodes",
		portalcli.Leaf("create", "Add a controller node",
			host+` cn create --cn-name 192.168.0.16:9820 --cn-listener-conf '{"trtype":"tcp","traddr":"192.168.0.16","adrfam":"ipv4","trsvcid":"4430"}' --location 192.168.0.16:9820`,
			func(f *pflag.FlagSet) {
				f.StringVar(&cr.CnName, "cn-name", "", "controller node name (host:port of its agent, unless --address)")
				f.StringVar(&cr.CnAddress, "address", "", "host:port of its agent, when the name is not (default: the name)")
				f.StringVar(&cr.CnListenerConf, "cn-listener-conf", "", "NVMe-oF listener JSON (where initiators connect)")
				f.StringVar(&cr.Location, "location", "", "failure domain")
				f.StringVar(&cr.Description, "description", "", "free text")
			}, []string{"cn-name", "cn-listener-conf"},
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.CnReply, error) { return p.CreateCn(ctx, &cr) })
			}),
		portalcli.Leaf("get", "Show a controller node", host+" cn get --cn-name 192.168.0.16:9820", nameFlag, []string{"cn-name"},
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.CnReply, error) {
					return p.GetCn(ctx, &pb.GetCnRequest{CnName: name})
				})
			}),
		portalcli.Leaf("list", "List controller nodes", host+" cn list", func(f *pflag.FlagSet) { pageFlags(f, list.Page) }, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ListCnReply, error) { return p.ListCn(ctx, &list) })
			}),
		portalcli.Leaf("modify", "Change a controller node", host+" cn modify --cn-name 192.168.0.16:9820 --description rack2",
			func(f *pflag.FlagSet) {
				nameFlag(f)
				f.String("description", "", "free text")
				f.String("address", "", "host:port of its agent (\"\": its name)")
				f.String("cn-listener-conf", "", "NVMe-oF listener JSON")
				f.String("location", "", "failure domain")
				f.Bool("offline", false, "take the node out of service for new arrays")
			}, []string{"cn-name"},
			func(cmd *cobra.Command) error {
				r := &pb.ModifyCnRequest{CnName: name, Description: optString(cmd, "description"),
					CnListenerConf: optString(cmd, "cn-listener-conf"), Location: optString(cmd, "location"), Offline: optBool(cmd, "offline"),
					CnAddress: optString(cmd, "address")}
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.CnReply, error) { return p.ModifyCn(ctx, r) })
			}),
		portalcli.Leaf("delete", "Remove a controller node without controllers", host+" cn delete --cn-name 192.168.0.16:9820", nameFlag, []string{"cn-name"},
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.DeleteReply, error) {
					return p.DeleteCn(ctx, &pb.DeleteCnRequest{CnName: name})
				})
			}),
		unbindCmd("cn", func(f *pflag.FlagSet) { nameFlag(f) }, func(cmd *cobra.Command) error {
			return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.UnbindReply, error) {
				return p.UnbindCn(ctx, &pb.UnbindCnRequest{CnName: name})
			})
		}),
	)
}

func (c *cli) daCmd() *cobra.Command {
	var cr pb.CreateDaRequest
	var name string
	list := pb.ListDaRequest{Page: &pb.Page{}}
	nameFlag := func(f *pflag.FlagSet) { f.StringVar(&name, "da-name", "", "disk array name") }
	return portalcli.Group("da", "Disk arrays",
		portalcli.Leaf("create", "Create a disk array (placed on PDs and CNs by the portal)",
			host+` da create --da-name da0 --cntlr-cnt 2 --da-size 33554432 --physical-size 33554432 --da-conf '{"stripe_count":2, "stripe_size_kb":64}'`,
			func(f *pflag.FlagSet) {
				f.StringVar(&cr.DaName, "da-name", "", "disk array name")
				f.Uint32Var(&cr.CntlrCnt, "cntlr-cnt", 1, "number of controllers (the first is primary)")
				f.Uint64Var(&cr.DaSize, "da-size", 0, "exported size in bytes (a multiple of 8192)")
				f.Uint64Var(&cr.PhysicalSize, "physical-size", 0, "space reserved in bytes (default: --da-size)")
				f.StringVar(&cr.DaConf, "da-conf", `{"stripe_count":1, "stripe_size_kb":64}`, "raid0 geometry JSON")
				f.StringVar(&cr.Description, "description", "", "free text")
				f.StringArrayVar(&cr.CnLocations, "cn-location", nil, "place controllers only on CNs of this location (repeatable)")
				f.StringArrayVar(&cr.DnLocations, "dn-location", nil, "place VDs only on PDs of DNs of this location (repeatable)")
				c.waitFlag(f, "the disk array is healthy")
			}, []string{"da-name", "da-size"},
			func(cmd *cobra.Command) error {
				return callWait(c, cmd, c.waitDA(cr.DaName, false),
					func(ctx context.Context, p pb.PortalClient) (*pb.DaReply, error) { return p.CreateDa(ctx, &cr) })
			}),
		portalcli.Leaf("get", "Show a disk array, its controllers and virtual disks (--watch: again on every change)", host+" da get --da-name da0",
			func(f *pflag.FlagSet) {
				nameFlag(f)
				f.Bool("watch", false, "print the disk array again after every change of it, until interrupted")
			}, []string{"da-name"},
			func(cmd *cobra.Command) error {
				if w, _ := cmd.Flags().GetBool("watch"); w {
					return c.daGetWatch(cmd, name)
				}
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.DaReply, error) {
					return p.GetDa(ctx, &pb.GetDaRequest{DaName: name})
				})
			}),
		portalcli.Leaf("list", "List disk arrays", host+" da list", func(f *pflag.FlagSet) { pageFlags(f, list.Page) }, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ListDaReply, error) { return p.ListDa(ctx, &list) })
			}),
		c.daModifyCmd(),
		portalcli.Leaf("delete", "Delete a disk array without exporters (its data is lost)", host+" da delete --da-name da0",
			func(f *pflag.FlagSet) {
				nameFlag(f)
				c.waitFlag(f, "the disk array is gone")
			}, []string{"da-name"},
			func(cmd *cobra.Command) error {
				return callWait(c, cmd, c.waitDA(name, true), func(ctx context.Context, p pb.PortalClient) (*pb.DeleteReply, error) {
					return p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: name})
				})
			}),
		c.daSwitchoverCmd(),
	)
}

func (c *cli) expCmd() *cobra.Command {
	var cr pb.CreateExpRequest
	var da, name string
	list := pb.ListExpRequest{Page: &pb.Page{}}
	names := func(f *pflag.FlagSet) {
		f.StringVar(&da, "da-name", "", "disk array name")
		f.StringVar(&name, "exp-name", "", "exporter name")
	}
	both := []string{"da-name", "exp-name"}
	create := portalcli.Leaf("create", "Export a disk array to its hosts (one exporter per volume, up to 64 hosts)",
		host+" exp create --da-name da0 --exp-name exp0 --initiator-nqn nqn.2016-06.io.spdk:host0 --host-nqn nqn.2016-06.io.spdk:host1",
		func(f *pflag.FlagSet) {
			f.StringVar(&cr.DaName, "da-name", "", "disk array name")
			f.StringVar(&cr.ExpName, "exp-name", "", "exporter name")
			f.StringVar(&cr.InitiatorNqn, "initiator-nqn", "", "host NQN allowed to connect (the first host)")
			f.StringArrayVar(&cr.HostNqns, "host-nqn", nil, "host NQN allowed to connect (repeatable)")
			f.StringVar(&cr.Description, "description", "", "free text")
			f.StringVar(&cr.SnapName, "snap-name", "", "export this snapshot of the disk array (read-only) instead of its volume")
			f.StringVar(&cr.CloneName, "clone-name", "", "export this clone of the disk array instead of its volume")
			c.waitFlag(f, "the exporter is healthy on every controller")
		}, []string{"da-name", "exp-name"},
		func(cmd *cobra.Command) error {
			return callWait(c, cmd, c.waitExp(cr.DaName, cr.ExpName, false),
				func(ctx context.Context, p pb.PortalClient) (*pb.ExpReply, error) { return p.CreateExp(ctx, &cr) })
		})
	create.MarkFlagsOneRequired("initiator-nqn", "host-nqn")
	var addHosts, removeHosts []string
	return portalcli.Group("exp", "Exporters",
		create,
		portalcli.Leaf("get", "Show an exporter: its NQN and, per controller, where to connect", host+" exp get --da-name da0 --exp-name exp0", names, both,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ExpReply, error) {
					return p.GetExp(ctx, &pb.GetExpRequest{DaName: da, ExpName: name})
				})
			}),
		portalcli.Leaf("list", "List exporters (of one disk array with --da-name)", host+" exp list --da-name da0",
			func(f *pflag.FlagSet) {
				f.StringVar(&list.DaName, "da-name", "", "disk array name (default: all)")
				pageFlags(f, list.Page)
			}, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ListExpReply, error) { return p.ListExp(ctx, &list) })
			}),
		portalcli.Leaf("modify", "Change an exporter: its description, or its hosts (a removed host is disconnected)",
			host+" exp modify --da-name da0 --exp-name exp0 --add-host-nqn nqn.2016-06.io.spdk:host2 --remove-host-nqn nqn.2016-06.io.spdk:host1",
			func(f *pflag.FlagSet) {
				names(f)
				f.String("description", "", "free text")
				f.String("initiator-nqn", "", "host NQN that replaces the first host")
				f.StringArrayVar(&addHosts, "add-host-nqn", nil, "host NQN to admit (repeatable)")
				f.StringArrayVar(&removeHosts, "remove-host-nqn", nil, "host NQN to remove and disconnect (repeatable)")
				c.waitFlag(f, "the exporter is healthy on every controller")
			}, both,
			func(cmd *cobra.Command) error {
				r := &pb.ModifyExpRequest{DaName: da, ExpName: name, Description: optString(cmd, "description"),
					InitiatorNqn: optString(cmd, "initiator-nqn"), AddHostNqns: addHosts, RemoveHostNqns: removeHosts}
				return callWait(c, cmd, c.waitExp(da, name, false),
					func(ctx context.Context, p pb.PortalClient) (*pb.ExpReply, error) { return p.ModifyExp(ctx, r) })
			}),
		portalcli.Leaf("delete", "Remove an exporter", host+" exp delete --da-name da0 --exp-name exp0",
			func(f *pflag.FlagSet) {
				names(f)
				c.waitFlag(f, "the exporter is gone")
			}, both,
			func(cmd *cobra.Command) error {
				return callWait(c, cmd, c.waitExp(da, name, true), func(ctx context.Context, p pb.PortalClient) (*pb.DeleteReply, error) {
					return p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: da, ExpName: name})
				})
			}),
	)
}

func (c *cli) clusterCmd() *cobra.Command {
	return portalcli.Group("cluster", "The whole cluster",
		portalcli.Leaf("summary", "Count objects and capacity", host+" cluster summary", func(*pflag.FlagSet) {}, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ClusterSummaryReply, error) {
					return p.GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
				})
			}),
	)
}
