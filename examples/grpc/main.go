// Command grpc sends a gRPC "inference" load through sturdy's grpcmw
// interceptors to three local servers: one fast, one slow, and one that
// drains (its grpc.health.v1 status goes NOT_SERVING, then it refuses calls)
// for a while and comes back. It prints, second by second, who served the
// calls, how many hedges won, and the health state of each server, and
// every ejection and restoration as it happens.
//
//	go run ./examples/grpc            # about 6 s
//	go run ./examples/grpc -h         # flags
//
// The service is grpc-go's own interop TestService (UnaryCall for requests,
// StreamingOutputCall for a token stream), so the example needs no generated
// code of its own. Everything listens on 127.0.0.1 and stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "run with -h for the flags")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseFlags parses args into fs. -h prints the usage to stdout and returns
// flag.ErrHelp, which run turns into a clean exit; a bad flag is a
// usageError, which main reports on stderr.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard) // errors are returned, not printed twice
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return err
	case err != nil:
		return usageError{err}
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
