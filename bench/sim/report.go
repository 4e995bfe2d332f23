package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Options size a suite run.
type Options struct {
	Reps  int     // repetitions of every run (3 for the published numbers)
	Scale float64 // multiplies every run's duration; 1 for the published numbers
	Short bool    // smoke mode: one condition per scenario, fewer clients
	Seed  uint64
	// PlotDir, if set, receives one PNG per scenario.
	PlotDir string
	// Log, if set, receives progress lines.
	Log func(format string, args ...any)
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

func (o Options) dur(d time.Duration) time.Duration {
	if o.Scale <= 0 {
		return d
	}
	return time.Duration(float64(d) * o.Scale)
}

// Row is one client under one condition, over every repetition.
type Row struct {
	Condition string
	Client    string
	Hist      *hdrhistogram.Histogram // pooled over repetitions
	Calls, OK int
	Attempts  int64              // backend attempts, summed over repetitions
	RepP99    []time.Duration    // p99 of each repetition
	Extra     map[string]float64 // scenario-specific figures (worst or mean over reps, as the scenario says)
}

// P returns the q-th percentile (0–100) of the pooled latency.
func (r *Row) P(q float64) time.Duration {
	if r.Hist == nil || r.Hist.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.Hist.ValueAtQuantile(q)) * time.Microsecond
}

// Success is the share of calls that succeeded within their timeout.
func (r *Row) Success() float64 {
	if r.Calls == 0 {
		return 0
	}
	return float64(r.OK) / float64(r.Calls)
}

// ExtraLoad is (backend attempts − calls) / calls, over every call of every
// repetition (warm-up included, since its attempts are too).
func (r *Row) ExtraLoad() float64 {
	if r.Extra == nil || r.Extra["allcalls"] == 0 {
		return 0
	}
	return (float64(r.Attempts) - r.Extra["allcalls"]) / r.Extra["allcalls"]
}

// Check is one target and whether it was met.
type Check struct {
	Target string
	Got    string
	Met    bool
	// Inconclusive says the measurement cannot decide the target (the
	// difference is within the run-to-run noise).
	Inconclusive bool
}

// Mark returns "met", "**missed**" or "inconclusive".
func (c Check) Mark() string {
	switch {
	case c.Inconclusive:
		return "inconclusive"
	case c.Met:
		return "met"
	}
	return "**missed**"
}

// Column is a scenario-specific table column.
type Column struct {
	Head   string
	Key    string
	Format func(float64) string
}

// Result is one scenario's outcome.
type Result struct {
	ID      int
	Title   string
	Setup   string // what was simulated, for the report
	Rows    []*Row
	Columns []Column
	Checks  []Check
	Plot    string // PNG file name under Options.PlotDir, if drawn
	Notes   []string
	Elapsed time.Duration
	// Outage says every call of the scenario is meant to fail: Produced
	// does not ask for successful calls.
	Outage bool
}

// Row returns the row of client under condition, or nil.
func (r *Result) Row(cond, client string) *Row {
	for _, row := range r.Rows {
		if row.Condition == cond && row.Client == client {
			return row
		}
	}
	return nil
}

// Produced reports whether every row has results: the smoke test's check.
func (r *Result) Produced() error {
	if len(r.Rows) == 0 {
		return fmt.Errorf("scenario %d: no rows", r.ID)
	}
	for _, row := range r.Rows {
		if row.Calls == 0 || row.Hist.TotalCount() == 0 {
			return fmt.Errorf("scenario %d: %s / %s produced no calls", r.ID, row.Condition, row.Client)
		}
		if row.OK == 0 && !r.Outage {
			return fmt.Errorf("scenario %d: %s / %s: no call succeeded", r.ID, row.Condition, row.Client)
		}
	}
	return nil
}

// Ms formats a duration in milliseconds.
func Ms(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	default:
		return fmt.Sprintf("%.2f", ms)
	}
}

// Pct formats a share as a percentage.
func Pct(v float64) string {
	switch {
	case v >= 0.999 && v < 1:
		return fmt.Sprintf("%.2f%%", 100*v)
	default:
		return fmt.Sprintf("%.1f%%", 100*v)
	}
}

// Markdown renders the scenario's table, checks and notes.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %d. %s\n\n%s\n\n", r.ID, r.Title, r.Setup)
	head := []string{"condition", "client", "p50 ms", "p99 ms", "p99.9 ms", "p99 ms per rep", "success", "extra load"}
	for _, c := range r.Columns {
		head = append(head, c.Head)
	}
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, row := range r.Rows {
		reps := make([]string, len(row.RepP99))
		for i, d := range row.RepP99 {
			reps[i] = Ms(d)
		}
		cells := []string{row.Condition, row.Client, Ms(row.P(50)), Ms(row.P(99)), Ms(row.P(99.9)),
			strings.Join(reps, " / "), Pct(row.Success()), fmt.Sprintf("%+.1f%%", 100*row.ExtraLoad())}
		for _, c := range r.Columns {
			v, ok := row.Extra[c.Key]
			switch {
			case !ok:
				cells = append(cells, "–")
			case c.Format != nil:
				cells = append(cells, c.Format(v))
			default:
				cells = append(cells, fmt.Sprintf("%.2f", v))
			}
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	if r.Plot != "" {
		fmt.Fprintf(&b, "\n![scenario %d](bench/plots/%s)\n", r.ID, r.Plot)
	}
	if len(r.Checks) > 0 {
		b.WriteString("\n| target | measured | |\n|---|---|---|\n")
		for _, c := range r.Checks {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Target, c.Got, c.Mark())
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	fmt.Fprintf(&b, "\n_Scenario wall time: %.0fs._\n\n", r.Elapsed.Seconds())
	return b.String()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
