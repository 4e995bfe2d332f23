package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// config is what the flags set.
type config struct {
	Scenario string
	Duration time.Duration
	Rate     float64
	Seed     uint64
	Timeout  time.Duration
	Out      string
	CSV      string
	Every    time.Duration // plain progress lines when not on a terminal
	Quiet    bool
}

// Bounds on what the flags accept: the run must stay a demo on a laptop.
const (
	maxDuration = 10 * time.Minute
	maxRate     = 2000
	maxCalls    = 200_000
)

// errHelp is returned by parseFlags for -h: usage was printed, exit 0.
var errHelp = flag.ErrHelp

// parseFlags parses args into a config, writing usage and errors to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", "mixed", "fault scenario: "+strings.Join(scenarioNames(), ", "))
	fs.DurationVar(&cfg.Duration, "duration", 25*time.Second, "how long calls are started (in-flight calls then get up to -timeout to finish)")
	fs.Float64Var(&cfg.Rate, "rate", 50, "mean calls per second of the open-loop Poisson load, for each client")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the arrival times, the prompts and every fake server")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "deadline of one call, retries included, for both clients")
	fs.StringVar(&cfg.Out, "out", "chaos.png", "path of the PNG picture (latency CDF and success rate over time); empty for none")
	fs.StringVar(&cfg.CSV, "csv", "", "if set, write one line per call (client, start, latency, ok, tier) to this CSV file")
	fs.DurationVar(&cfg.Every, "every", 5*time.Second, "interval of progress lines when stderr is not a terminal")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "no progress display")
	fs.Usage = func() { usage(fs) }

	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (all settings are flags; see -h)", fs.Arg(0))
	}
	if _, ok := scenarios[cfg.Scenario]; !ok {
		return cfg, fmt.Errorf("unknown -scenario %q; choose one of: %s", cfg.Scenario, strings.Join(scenarioNames(), ", "))
	}
	switch {
	case cfg.Duration <= 0 || cfg.Duration > maxDuration:
		return cfg, fmt.Errorf("-duration %v out of range (0, %v]", cfg.Duration, maxDuration)
	case !(cfg.Rate > 0 && cfg.Rate <= maxRate): // also rejects NaN
		return cfg, fmt.Errorf("-rate %v out of range (0, %d]", cfg.Rate, maxRate)
	case cfg.Rate*cfg.Duration.Seconds() > maxCalls:
		return cfg, fmt.Errorf("-rate × -duration is %.0f calls, more than %d; lower one of them", cfg.Rate*cfg.Duration.Seconds(), maxCalls)
	case cfg.Timeout <= 0 || cfg.Timeout > time.Minute:
		return cfg, fmt.Errorf("-timeout %v out of range (0, 1m]", cfg.Timeout)
	case cfg.Every <= 0:
		return cfg, errors.New("-every must be positive")
	}
	return cfg, nil
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `chaos: a plain HTTP client and the same client with sturdy, side by side,
against fake OpenAI-compatible model servers that fail on purpose.

Usage: go run ./examples/chaos [flags]

Each client gets its own fresh set of in-process fake servers on 127.0.0.1
(same configuration, same seeds, same fault timeline) and the same seeded
open-loop Poisson schedule of calls; the two run at the same time, so they
share the machine alike. A server set is `+fmt.Sprint(primaryReplicas)+` replicas of the primary
model "`+primaryModel+`" and one replica of the fallback model "`+fallbackModel+`".

The plain client is an http.Client whose transport sends each request to the
next primary replica in turn (round-robin), wrapped in the usual retry loop:
on a 5xx, a 429 or a transport error it retries up to 3 times (4 attempts),
waiting a full-jitter backoff of 100 ms × 2^n (at most 1 s) or the
Retry-After the server sent (capped at 1 s). It has no fallback model.

The sturdy client is the same http.Client with httpmw.NewTransport and no
retry loop of its own: tier 0 is the primary's replicas, tier 1 the
fallback model; P2C Peak-EWMA balancing, failover (3 attempts, 1 s per
attempt, 10% retry budget), adaptive hedging (p95 delay, 5% budget),
passive health ejection and /health probes, with ejection and probe
intervals scaled to -duration (the production defaults, 30 s and 10 s,
are as long as the demo).

Both clients give each call the same -timeout. A call succeeds when it gets
a 200 with a chat completion.

Scenarios (fault windows scale with -duration, server capacities with -rate):
`)
	for _, name := range scenarioNames() {
		fmt.Fprintf(w, "  %-17s %s\n", name, wrap(scenarios[name].about, 58, strings.Repeat(" ", 20)))
	}
	fmt.Fprint(w, `
Output: a live progress line on a terminal (plain lines every -every
otherwise), then the table, and the picture written to -out.
Exit status: 0 after a run (also when stopped early with Ctrl-C, which still
prints the table), 2 for bad flags, 1 if the run could not start.

Flags:
`)
	fs.PrintDefaults()
}

// wrap breaks s into lines of at most width runes, indenting every line
// but the first.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		l := len([]rune(word))
		if i > 0 {
			if n+1+l > width {
				b.WriteString("\n" + indent)
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(word)
		n += l
	}
	return b.String()
}
