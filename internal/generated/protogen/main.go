package main

import (
	"context"
	"fmt"
	"os"

	"github.com/vda-io/vda/internal/generated"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: protogen FILE.proto (run by go generate in its directory)")
		os.Exit(2)
	}
	bin, err := os.MkdirTemp("", "vda-protogen")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(bin)
	ctx := context.Background()
	if err := generated.Plugins(ctx, bin); err == nil {
		err = generated.Protos(ctx, bin, ".", os.Args[1], ".")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
