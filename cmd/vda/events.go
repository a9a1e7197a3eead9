package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

// eventWatching is the type of a Watch stream's first message
// (portal.EventWatching; the CLI does not link the portal).
const eventWatching = "watching"

// eventsCmd is "vda events": the portal's Watch stream, one line per
// event, until interrupted.
func (c *cli) eventsCmd() *cobra.Command {
	var r pb.WatchRequest
	cmd := portalcli.Leaf("events", "Print the cluster's changes as they happen: objects, health, failovers",
		host+" events --kind da --kind exp --da-name da0",
		func(f *pflag.FlagSet) {
			f.Int64Var(&r.FromRevision, "from-revision", 0, "replay every change from this store revision on (0: from now)")
			f.StringArrayVar(&r.Kinds, "kind", nil, "only these kinds: dn, pd, cn, da, exp, snap, clone (repeatable)")
			f.StringVar(&r.DaName, "da-name", "", "only this disk array and its exporters, snapshots and clones")
		}, nil,
		func(cmd *cobra.Command) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			jsonOut := cmd.Flags().Lookup("output").Changed && c.output == "json"
			w, err := cl.Watch(cmd.Context(), &r)
			if err != nil {
				return err
			}
			for {
				ev, err := w.Recv()
				if err != nil {
					return streamEnd(cmd.Context(), err)
				}
				if ev.GetType() == eventWatching {
					continue
				}
				if err := printEvent(c.out, ev, jsonOut); err != nil {
					return err
				}
			}
		})
	cmd.Long = "events prints one line per change of the cluster's disk nodes (dn), physical disks (pd),\n" +
		"controller nodes (cn), disk arrays (da), exporters (exp), snapshots (snap) and clones (clone),\n" +
		"with its store revision: created, changed, deleted; health (the monitor's report changed:\n" +
		"from -> to, healthy parts, the message); failover and switchover (a disk array's primary\n" +
		"moved). It runs until interrupted; -o json prints one JSON object per line instead.\n" +
		"After an interruption, --from-revision with the last revision printed + 1 resumes; a\n" +
		"revision the store no longer keeps is refused (OutOfRange): start from now."
	return cmd
}

// streamEnd is nil when the stream ended because the command was
// interrupted, else the stream's error.
func streamEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// printEvent writes one event as a line of text or of JSON.
func printEvent(w io.Writer, ev *pb.WatchEvent, jsonOut bool) error {
	if jsonOut {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
		if err != nil {
			return err
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			return err
		}
		compact.WriteByte('\n')
		_, err = w.Write(compact.Bytes())
		return err
	}
	_, err := fmt.Fprintln(w, eventLine(ev))
	return err
}

// eventLine is an event as one line: "<revision> <kind> <name> <type> <details>".
func eventLine(ev *pb.WatchEvent) string {
	name := ev.GetName()
	if ev.GetParent() != "" {
		name = ev.GetParent() + "/" + name
	}
	line := fmt.Sprintf("%d %s %s %s", ev.GetRevision(), ev.GetKind(), name, ev.GetType())
	switch ev.GetType() {
	case "health":
		line += " " + healthOr(ev.GetPrevHealth()) + " -> " + healthOr(ev.GetHealth())
		if ev.GetParts() > 0 {
			what := "parts"
			if ev.GetKind() == "exp" {
				what = "controllers"
			}
			line += fmt.Sprintf(" (%d of %d %s healthy)", ev.GetHealthyParts(), ev.GetParts(), what)
		}
		if n := ev.GetAppliedSize(); n > 0 {
			line += fmt.Sprintf(", volume at %d bytes", n)
		}
		if ev.GetInflated() {
			line += ", inflated"
		}
		if ev.GetMessage() != "" {
			line += ": " + ev.GetMessage()
		}
	case "failover", "switchover":
		mv := ev.GetPrimaryMove()
		line += fmt.Sprintf(" primary controller %d on %s -> controller %d on %s, epoch %d",
			mv.GetFromCntlrIdx(), mv.GetFromCnName(), mv.GetToCntlrIdx(), mv.GetToCnName(), mv.GetEpoch())
	}
	return strings.Map(func(r rune) rune { // one line, whatever a server sends
		if notPrintable(r) {
			return '?'
		}
		return r
	}, line)
}

func healthOr(h string) string {
	if h == "" {
		return "unknown"
	}
	return h
}

// watchObject calls show now and after every change of the object named
// name of kind (of disk array da), until ctx ends or show fails.
func watchObject(ctx context.Context, cl pb.PortalClient, da, kind, name string, show func(context.Context) error) error {
	w, err := cl.Watch(ctx, &pb.WatchRequest{DaName: da, Kinds: []string{kind}})
	if err != nil {
		return err
	}
	if _, err := w.Recv(); err != nil { // "watching": changes from now on are seen
		return streamEnd(ctx, err)
	}
	for {
		if err := show(ctx); err != nil {
			return streamEnd(ctx, err)
		}
		if _, err := nextChange(w, kind, name); err != nil {
			return streamEnd(ctx, err)
		}
	}
}

// nextChange returns the stream's next event of the object.
func nextChange(w grpc.ServerStreamingClient[pb.WatchEvent], kind, name string) (*pb.WatchEvent, error) {
	for {
		ev, err := w.Recv()
		if err != nil {
			return nil, err
		}
		if ev.GetKind() == kind && ev.GetName() == name {
			return ev, nil
		}
	}
}

// daGetWatch is "da get --watch": the disk array again after every change.
func (c *cli) daGetWatch(cmd *cobra.Command, name string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	return watchObject(cmd.Context(), cl, name, "da", name, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.portal.Timeout)
		defer cancel()
		reply, err := cl.GetDa(ctx, &pb.GetDaRequest{DaName: name})
		if status.Code(err) == codes.NotFound {
			return status.Errorf(codes.NotFound, "disk array %q was deleted (or never created)", name)
		}
		if err != nil {
			return err
		}
		if c.output == "table" {
			if err := printTable(c.out, reply.ProtoReflect()); err != nil {
				return err
			}
			_, err := fmt.Fprintln(c.out)
			return err
		}
		return printJSON(c.out, reply)
	})
}
