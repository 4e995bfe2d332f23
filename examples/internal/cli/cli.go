// Package cli is the command-line plumbing the example programs share:
// signal handling, exit codes and flag parsing.
package cli

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

// Main runs run with a context cancelled on SIGINT/SIGTERM and exits: 0 on
// success or -h, 2 for a UsageError (with a hint to run -h), 1 otherwise.
func Main(name string, run func(ctx context.Context, args []string, stdout io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	var ue UsageError
	if errors.As(err, &ue) {
		fmt.Fprintln(os.Stderr, "run with -h for the flags")
		os.Exit(2)
	}
	os.Exit(1)
}

// UsageError is a bad command line or environment.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ParseFlags parses args into fs. -h prints the usage to stdout and returns
// flag.ErrHelp, which Main turns into a clean exit; a bad flag or a
// positional argument is a UsageError.
func ParseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard) // errors are returned, not printed twice
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return err
	case err != nil:
		return UsageError{err}
	case fs.NArg() > 0:
		return UsageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
