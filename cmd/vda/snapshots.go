package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

func (c *cli) snapCmd() *cobra.Command {
	var cr pb.CreateSnapRequest
	var da, name string
	list := pb.ListSnapRequest{Page: &pb.Page{}}
	names := func(f *pflag.FlagSet) {
		f.StringVar(&da, "da-name", "", "disk array name")
		f.StringVar(&name, "snap-name", "", "snapshot name")
	}
	both := []string{"da-name", "snap-name"}
	return portalcli.Group("snap", "Snapshots of disk arrays (read-only, thin, in the array's lvstore)",
		portalcli.Leaf("create", "Take a crash-consistent snapshot of a disk array's volume",
			host+" snap create --da-name da0 --snap-name snap0",
			func(f *pflag.FlagSet) {
				f.StringVar(&cr.DaName, "da-name", "", "disk array name")
				f.StringVar(&cr.SnapName, "snap-name", "", "snapshot name")
				f.StringVar(&cr.Description, "description", "", "free text")
				c.waitFlag(f, "the snapshot is taken (ready)")
			}, both,
			func(cmd *cobra.Command) error {
				return callWait(c, cmd, c.waitSnap(cr.DaName, cr.SnapName, false),
					func(ctx context.Context, p pb.PortalClient) (*pb.SnapReply, error) { return p.CreateSnap(ctx, &cr) })
			}),
		portalcli.Leaf("get", "Show a snapshot: whether it was taken (ready), its exporter and clones",
			host+" snap get --da-name da0 --snap-name snap0", names, both,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.SnapReply, error) {
					return p.GetSnap(ctx, &pb.GetSnapRequest{DaName: da, SnapName: name})
				})
			}),
		portalcli.Leaf("list", "List snapshots (of one disk array with --da-name)", host+" snap list --da-name da0",
			func(f *pflag.FlagSet) {
				f.StringVar(&list.DaName, "da-name", "", "disk array name (default: all)")
				pageFlags(f, list.Page)
			}, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ListSnapReply, error) { return p.ListSnap(ctx, &list) })
			}),
		portalcli.Leaf("delete", "Delete a snapshot no exporter exports and no clone depends on",
			host+" snap delete --da-name da0 --snap-name snap0",
			func(f *pflag.FlagSet) {
				names(f)
				c.waitFlag(f, "the snapshot is gone")
			}, both,
			func(cmd *cobra.Command) error {
				return callWait(c, cmd, c.waitSnap(da, name, true), func(ctx context.Context, p pb.PortalClient) (*pb.DeleteReply, error) {
					return p.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: da, SnapName: name})
				})
			}),
	)
}

func (c *cli) cloneCmd() *cobra.Command {
	var cr pb.CreateCloneRequest
	var da, name string
	list := pb.ListCloneRequest{Page: &pb.Page{}}
	names := func(f *pflag.FlagSet) {
		f.StringVar(&da, "da-name", "", "disk array name")
		f.StringVar(&name, "clone-name", "", "clone name")
	}
	both := []string{"da-name", "clone-name"}
	return portalcli.Group("clone", "Clones: writable volumes made from snapshots (thin, in the array's lvstore)",
		portalcli.Leaf("create", "Make a writable clone of a snapshot",
			host+" clone create --da-name da0 --snap-name snap0 --clone-name clone0",
			func(f *pflag.FlagSet) {
				f.StringVar(&cr.DaName, "da-name", "", "disk array name")
				f.StringVar(&cr.CloneName, "clone-name", "", "clone name")
				f.StringVar(&cr.SnapName, "snap-name", "", "the snapshot to clone")
				f.StringVar(&cr.Description, "description", "", "free text")
				c.waitFlag(f, "the clone is made (ready)")
			}, []string{"da-name", "clone-name", "snap-name"},
			func(cmd *cobra.Command) error {
				return callWait(c, cmd, c.waitClone(cr.DaName, cr.CloneName, false), func(ctx context.Context, p pb.PortalClient) (*pb.CloneReply, error) { return p.CreateClone(ctx, &cr) })
			}),
		portalcli.Leaf("get", "Show a clone: its snapshot, size, and whether it is inflated",
			host+" clone get --da-name da0 --clone-name clone0", names, both,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.CloneReply, error) {
					return p.GetClone(ctx, &pb.GetCloneRequest{DaName: da, CloneName: name})
				})
			}),
		portalcli.Leaf("list", "List clones (of one disk array with --da-name)", host+" clone list --da-name da0",
			func(f *pflag.FlagSet) {
				f.StringVar(&list.DaName, "da-name", "", "disk array name (default: all)")
				pageFlags(f, list.Page)
			}, nil,
			func(cmd *cobra.Command) error {
				return call(c, cmd, func(ctx context.Context, p pb.PortalClient) (*pb.ListCloneReply, error) {
					return p.ListClone(ctx, &list)
				})
			}),
		portalcli.Leaf("modify", "Grow a clone, inflate it (detach it from its snapshot) or change its description",
			host+" clone modify --da-name da0 --clone-name clone0 --size 2147483648 --inflate",
			func(f *pflag.FlagSet) {
				names(f)
				f.String("description", "", "free text")
				f.Uint64("size", 0, "new size in bytes (grow only; a multiple of the array's cluster size)")
				f.Bool("inflate", false, "copy every cluster in so the clone no longer depends on its snapshot")
				c.waitFlag(f, "the clone is as asked (ready, its lvol at --size, inflated if --inflate)")
			}, both,
			func(cmd *cobra.Command) error {
				r := &pb.ModifyCloneRequest{DaName: da, CloneName: name, Description: optString(cmd, "description")}
				if cmd.Flags().Changed("size") {
					v, _ := cmd.Flags().GetUint64("size")
					r.Size = &v
				}
				r.Inflate, _ = cmd.Flags().GetBool("inflate")
				return callWait(c, cmd, c.waitCloneApplied(da, name, r.GetSize(), r.Inflate),
					func(ctx context.Context, p pb.PortalClient) (*pb.CloneReply, error) { return p.ModifyClone(ctx, r) })
			}),
		portalcli.Leaf("delete", "Delete a clone no exporter exports (its data is lost)",
			host+" clone delete --da-name da0 --clone-name clone0",
			func(f *pflag.FlagSet) {
				names(f)
				c.waitFlag(f, "the clone is gone")
			}, both,
			func(cmd *cobra.Command) error {
				return callWait(c, cmd, c.waitClone(da, name, true), func(ctx context.Context, p pb.PortalClient) (*pb.DeleteReply, error) {
					return p.DeleteClone(ctx, &pb.DeleteCloneRequest{DaName: da, CloneName: name})
				})
			}),
	)
}
