package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/vda-io/vda/api/portalpb"
)

// defaultWait is how long a bare --wait waits.
const defaultWait = 5 * time.Minute

// waitFlag adds --wait[=DURATION] to f: the command returns once the
// object is ready (or gone), or fails after DURATION saying why not.
func (c *cli) waitFlag(f *pflag.FlagSet, goal string) {
	f.DurationVar(&c.wait, "wait", 0, fmt.Sprintf("wait until %s, at most this long (--wait alone: %v)", goal, defaultWait))
	f.Lookup("wait").NoOptDefVal = defaultWait.String()
}

// waitFor is what --wait waits for: the object (kind, name, of disk
// array da), read by get, until done says it is there.
type waitFor struct {
	what         string // "disk array da0"
	goal         string // "healthy", "gone"
	kind, da, nm string
	get          func(context.Context, pb.PortalClient) (proto.Message, error)
	// done says whether the read is what the command waits for, and
	// describes it otherwise.
	done func(proto.Message, error) (bool, string)
}

// callWait is call that, with --wait, waits for w after the request
// succeeded and then prints the object as it is (a delete prints its
// reply).
func callWait[R proto.Message](c *cli, cmd *cobra.Command, w waitFor, rpc func(context.Context, pb.PortalClient) (R, error)) error {
	if c.wait == 0 {
		return call(c, cmd, rpc)
	}
	if c.wait < 0 {
		return fmt.Errorf("--wait %v is negative", c.wait)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), c.portal.Timeout)
	reply, err := rpc(ctx, cl)
	cancel()
	if err != nil {
		return err
	}
	final, err := c.waitUntil(cmd, cl, w)
	if err != nil {
		return err
	}
	if final == nil {
		final = reply
	}
	if c.output == "table" {
		return printTable(c.out, final.ProtoReflect())
	}
	return printJSON(c.out, final)
}

// waitUntil reads the object after a watch of it started, and again after
// every change, until w.done; it shows its progress on stderr. It returns
// the last read when that is the object.
func (c *cli) waitUntil(cmd *cobra.Command, cl pb.PortalClient, w waitFor) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), c.wait)
	defer cancel()
	// gRPC refuses a call whose deadline the clock has passed before the
	// context's timer has fired (late on a busy machine): both are the
	// wait's end.
	deadline, _ := ctx.Deadline()
	expired := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	p := newProgress(cmd.ErrOrStderr(), fmt.Sprintf("waiting for %s to be %s", w.what, w.goal))
	defer p.end()
	timeout := func(desc string) error {
		if cmd.Context().Err() != nil {
			return cmd.Context().Err()
		}
		return status.Errorf(codes.DeadlineExceeded, "%s is not %s after %v: %s", w.what, w.goal, c.wait, desc)
	}
	// A short --wait on a busy machine can end before the portal started
	// the watch: the timeout still says what the object looks like.
	lastLook := func() string {
		gctx, gcancel := context.WithTimeout(cmd.Context(), c.portal.Timeout)
		defer gcancel()
		m, err := w.get(gctx, cl)
		if _, desc := w.done(m, err); desc != "" {
			return desc
		}
		return "the portal did not start the watch"
	}
	stream, err := cl.Watch(ctx, &pb.WatchRequest{DaName: w.da, Kinds: []string{w.kind}})
	if err != nil {
		if expired() {
			return nil, timeout(lastLook())
		}
		return nil, err
	}
	if _, err := stream.Recv(); err != nil { // "watching": every change from now on is seen
		if expired() {
			return nil, timeout(lastLook())
		}
		return nil, err
	}
	var parts string
	for {
		gctx, gcancel := context.WithTimeout(ctx, c.portal.Timeout)
		m, err := w.get(gctx, cl)
		gcancel()
		done, desc := w.done(m, err)
		switch {
		case done:
			p.show(w.goal)
			if err != nil {
				return nil, nil
			}
			return m, nil
		case expired():
			return nil, timeout(desc + parts)
		case err != nil && status.Code(err) != codes.NotFound:
			return nil, err
		case err != nil && w.goal != "gone":
			return nil, status.Errorf(codes.NotFound, "%s was deleted while waiting for it", w.what)
		}
		p.show(desc + parts)
		ev, err := nextChange(stream, w.kind, w.nm)
		if err != nil {
			if expired() {
				return nil, timeout(desc + parts)
			}
			return nil, err
		}
		if ev.GetType() == "health" && ev.GetParts() > 0 {
			what := "parts"
			if w.kind == "exp" {
				what = "controllers"
			}
			parts = fmt.Sprintf(" (%d of %d %s healthy)", ev.GetHealthyParts(), ev.GetParts(), what)
		}
	}
}

// statusDesc describes a status: "degraded: controller 1: ...".
func statusDesc(s *pb.Status) string {
	h := healthOr(s.GetHealth())
	if s.GetErrorMsg() != "" {
		return h + ": " + s.GetErrorMsg()
	}
	return h
}

func healthy(s *pb.Status) bool { return s.GetHealth() == "healthy" }

// gone is the done of a delete: the object is not found.
func gone(_ proto.Message, err error) (bool, string) {
	if status.Code(err) == codes.NotFound {
		return true, "gone"
	}
	if err != nil {
		return false, err.Error()
	}
	return false, "still there"
}

func (c *cli) waitDA(name string, deleting bool) waitFor {
	w := waitFor{what: fmt.Sprintf("disk array %s", name), goal: "healthy", kind: "da", da: name, nm: name,
		get: func(ctx context.Context, p pb.PortalClient) (proto.Message, error) {
			return p.GetDa(ctx, &pb.GetDaRequest{DaName: name})
		},
		done: func(m proto.Message, err error) (bool, string) {
			if err != nil {
				return false, err.Error()
			}
			st := m.(*pb.DaReply).GetDaMsg().GetStatus()
			return healthy(st), statusDesc(st)
		}}
	if deleting {
		w.goal, w.done = "gone", gone
	}
	return w
}

// waitDASize is waitDA for a resize to size bytes: healthy, and the
// primary reported the volume at size or more (status applied_size). A
// healthy status alone says nothing of the resize: the array was healthy
// before it, and stays so while the primary grows the volume.
func (c *cli) waitDASize(name string, size uint64) waitFor {
	w := c.waitDA(name, false)
	w.goal = fmt.Sprintf("healthy at %d bytes", size)
	w.done = func(m proto.Message, err error) (bool, string) {
		if err != nil {
			return false, err.Error()
		}
		st := m.(*pb.DaReply).GetDaMsg().GetStatus()
		desc := statusDesc(st)
		if got := st.GetAppliedSize(); got < size {
			desc += fmt.Sprintf(", volume at %d of %d bytes", got, size)
		}
		return healthy(st) && st.GetAppliedSize() >= size, desc
	}
	return w
}

func (c *cli) waitExp(da, name string, deleting bool) waitFor {
	w := waitFor{what: fmt.Sprintf("exporter %s of disk array %s", name, da), goal: "healthy on every controller",
		kind: "exp", da: da, nm: name,
		get: func(ctx context.Context, p pb.PortalClient) (proto.Message, error) {
			return p.GetExp(ctx, &pb.GetExpRequest{DaName: da, ExpName: name})
		},
		done: func(m proto.Message, err error) (bool, string) {
			if err != nil {
				return false, err.Error()
			}
			exp := m.(*pb.ExpReply).GetExpMsg()
			bad := 0
			for _, es := range exp.GetEsMsgList() {
				if es.GetError() {
					bad++
				}
			}
			return healthy(exp.GetStatus()) && bad == 0, statusDesc(exp.GetStatus())
		}}
	if deleting {
		w.goal, w.done = "gone", gone
	}
	return w
}

func (c *cli) waitSnap(da, name string, deleting bool) waitFor {
	w := waitFor{what: fmt.Sprintf("snapshot %s of disk array %s", name, da), goal: "ready", kind: "snap", da: da, nm: name,
		get: func(ctx context.Context, p pb.PortalClient) (proto.Message, error) {
			return p.GetSnap(ctx, &pb.GetSnapRequest{DaName: da, SnapName: name})
		},
		done: func(m proto.Message, err error) (bool, string) {
			if err != nil {
				return false, err.Error()
			}
			s := m.(*pb.SnapReply).GetSnapMsg()
			return s.GetReady(), statusDesc(s.GetStatus())
		}}
	if deleting {
		w.goal, w.done = "gone", gone
	}
	return w
}

func (c *cli) waitClone(da, name string, deleting bool) waitFor {
	w := waitFor{what: fmt.Sprintf("clone %s of disk array %s", name, da), goal: "ready", kind: "clone", da: da, nm: name,
		get: func(ctx context.Context, p pb.PortalClient) (proto.Message, error) {
			return p.GetClone(ctx, &pb.GetCloneRequest{DaName: da, CloneName: name})
		},
		done: func(m proto.Message, err error) (bool, string) {
			if err != nil {
				return false, err.Error()
			}
			cl := m.(*pb.CloneReply).GetCloneMsg()
			return cl.GetReady(), statusDesc(cl.GetStatus())
		}}
	if deleting {
		w.goal, w.done = "gone", gone
	}
	return w
}

// waitCloneApplied is waitClone for a modify: ready, and, if asked, the
// primary reported the lvol at size bytes or more (status applied_size)
// and inflated.
func (c *cli) waitCloneApplied(da, name string, size uint64, inflate bool) waitFor {
	w := c.waitClone(da, name, false)
	if size > 0 {
		w.goal = fmt.Sprintf("ready at %d bytes", size)
	}
	if inflate {
		w.goal += " and inflated"
	}
	w.done = func(m proto.Message, err error) (bool, string) {
		if err != nil {
			return false, err.Error()
		}
		cl := m.(*pb.CloneReply).GetCloneMsg()
		desc := statusDesc(cl.GetStatus())
		got := cl.GetStatus().GetAppliedSize()
		if got < size {
			desc += fmt.Sprintf(", lvol at %d of %d bytes", got, size)
		}
		if inflate && !cl.GetInflated() {
			desc += ", not inflated yet"
		}
		return cl.GetReady() && got >= size && (!inflate || cl.GetInflated()), desc
	}
	return w
}

// progress shows what a wait sees: on a terminal one line rewritten in
// place, elsewhere a line per change. It writes to stderr so that stdout
// stays the command's reply.
type progress struct {
	w        io.Writer
	prefix   string
	terminal bool
	last     string
	start    time.Time
}

func newProgress(w io.Writer, prefix string) *progress {
	return &progress{w: w, prefix: prefix, terminal: isTerminal(w), start: time.Now()}
}

func (p *progress) show(desc string) {
	if desc == p.last {
		return
	}
	p.last = desc
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s: %s (%s)", p.prefix, desc, time.Since(p.start).Round(time.Second))
		return
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.prefix, desc)
}

// end finishes the in-place line.
func (p *progress) end() {
	if p.terminal && p.last != "" {
		fmt.Fprintln(p.w)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
