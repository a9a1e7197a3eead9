package cmdrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/internal/version"
)

// Exit codes of every binary.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Main runs a server binary called name: parse turns args into its
// configuration (flag.ErrHelp after --help, version.ErrRequested after
// --version, when Main prints the version to stderr as it does the usage), logs picks the log flags from
// it, and serve runs until ctx ends. Usage errors (bad log flags too) go to stderr prefixed with
// name; serve's error is logged. Once serve returns, Main tells the service
// manager, if any, that the binary is stopping (Notify).
func Main[C any](ctx context.Context, name string, args []string, stderr io.Writer,
	parse func(args []string, stderr io.Writer) (C, error), logs func(C) LogFlags,
	serve func(ctx context.Context, cfg C, log hclog.Logger) error) int {
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if errors.Is(err, version.ErrRequested) {
		version.Print(stderr, name)
		return ExitOK
	}
	if err == nil {
		err = logs(cfg).Validate()
	}
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return ExitUsage
	}
	log := logs(cfg).Logger(name, stderr)
	err = serve(ctx, cfg, log)
	_, _ = Notify("STOPPING=1")
	if err != nil {
		log.Error("exiting", "error", err)
		return ExitFailure
	}
	return ExitOK
}

// Together runs every fn under one context until the first returns, then
// cancels the others and waits for them. It returns the first error (nil
// when the first to return returned nil).
func Together(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { errc <- fn(ctx) }()
	}
	first := <-errc
	cancel()
	for range len(fns) - 1 {
		<-errc
	}
	return first
}
