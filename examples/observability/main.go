// Command observability drives calls through sturdy's httpmw.Transport
// against local fake model servers that fail on purpose, and shows what an
// operator sees: OpenTelemetry traces (a few calls, printed by the stdout
// exporter) and the sturdy.* metrics on a Prometheus /metrics endpoint
// (the OpenTelemetry Prometheus exporter), for the Grafana dashboard
// (dashboard.json) and the alerting rules (alerts.yml) beside this file.
//
//	go run ./examples/observability                 # about 20 s of traffic
//	go run ./examples/observability -linger 10m     # then keep /metrics up
//	go run ./examples/observability -h              # flags
//
// Everything listens on 127.0.0.1 and stops by itself.
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
		fmt.Fprintln(os.Stderr, "observability:", err)
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
