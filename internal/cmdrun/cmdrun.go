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
// --version, when Main prints the version to stderr as it does the usage), level picks the log level from
// it, and serve runs until ctx ends. Usage errors go to stderr prefixed with
// name; serve's error is logged.
func Main[C any](ctx context.Context, name string, args []string, stderr io.Writer,
	parse func(args []string, stderr io.Writer) (C, error), level func(C) string,
	serve func(ctx context.Context, cfg C, log hclog.Logger) error) int {
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if errors.Is(err, version.ErrRequested) {
		version.Print(stderr, name)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return ExitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: name, Output: stderr, Level: hclog.LevelFromString(level(cfg))})
	if err := serve(ctx, cfg, log); err != nil {
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
