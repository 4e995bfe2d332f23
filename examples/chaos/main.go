// Command chaos runs a plain HTTP client and the same client with sturdy's
// transport side by side against in-process fake model servers that fail on
// purpose, and prints what each got: success rate, latency percentiles, extra
// backend load, tier shares, expected quality and per-endpoint availability.
//
//	go run ./examples/chaos            # the default scenario, about 30 s
//	go run ./examples/chaos -h         # scenarios and flags
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C stops the run and still prints the table; once it
	// is handled, a second one kills the program as usual.
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
