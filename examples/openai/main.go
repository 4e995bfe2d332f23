// Command openai sends chat completions with the official openai-go client
// through sturdy's httpmw.Transport: two providers of the primary model and a
// fallback model, one non-streaming call and one streaming call printed token
// by token.
//
//	go run ./examples/openai          # local fake servers on 127.0.0.1, with faults
//	go run ./examples/openai -h       # flags and environment variables
//
// With OPENAI_API_KEY and STURDY_PRIMARY_URLS set it talks to real
// OpenAI-compatible endpoints instead (see -h); -local forces the fakes.
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
		fmt.Fprintln(os.Stderr, "openai:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "run with -h for the flags")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad command line or environment.
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
