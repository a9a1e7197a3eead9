// Command vda is the VDA command line client: it sends the portal's gRPC
// requests and prints the replies as JSON (default) or tables.
//
//	vda --addr-port 192.168.0.11:9520 da create --da-name da0 --cntlr-cnt 2 \
//	    --da-size 33554432 --physical-size 33554432 \
//	    --da-conf '{"stripe_count":2, "stripe_size_kb":64}'
//
// Errors print the server's message on stderr and exit with status 1
// (2 for usage errors).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
