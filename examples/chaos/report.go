package main

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/sturdyai/sturdy/health"
)

// endpointRow is one server's line of the per-endpoint table.
type endpointRow struct {
	Name, Fault string
	Tier        int
	PlainReq    int64 // chat completions received from the plain client
	SturdyReq   int64 // ... and from the sturdy client
	Health      health.Availability
	HasHealth   bool
}

// poolFigure compares, for each k, the k-of-n estimate from per-replica
// availabilities with the share of time at least k replicas were up.
type poolFigure struct {
	N        int
	PerEP    []float64 // the availabilities fed to AtLeastK
	Estimate []float64 // Estimate[k-1] = health.AtLeastK(k, PerEP)
	Measured []float64 // Measured[k-1]: share of samples with ≥ k replicas not ejected
	Samples  int
}

func newPoolFigure(avail []float64, counts []int) poolFigure {
	n := len(counts) - 1
	p := poolFigure{N: n, PerEP: avail}
	for _, c := range counts {
		p.Samples += c
	}
	for k := 1; k <= n; k++ {
		p.Estimate = append(p.Estimate, health.AtLeastK(k, avail))
		atLeast := 0
		for j := k; j <= n; j++ {
			atLeast += counts[j]
		}
		p.Measured = append(p.Measured, ratio(atLeast, p.Samples))
	}
	return p
}

// report is everything the table shows.
type report struct {
	cfg       config
	calls     int // scheduled calls per client
	elapsed   time.Duration
	stopped   bool // Ctrl-C
	plain     summary
	sturdy    summary
	chainFB   uint64 // fallbacks counted by the chain
	endpoints []endpointRow
	pool      poolFigure
	picture   string
}

func (r *report) print(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "\nscenario %s: %v of Poisson load at %g calls/s (seed %d), %d calls scheduled per client, call timeout %v\n",
		c.Scenario, c.Duration, c.Rate, c.Seed, r.calls, c.Timeout)
	if r.stopped {
		fmt.Fprintf(w, "stopped early by a signal after %.1fs: the figures cover the %d/%d calls that finished\n",
			r.elapsed.Seconds(), r.plain.Calls, r.sturdy.Calls)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, p, s string) { fmt.Fprintf(tw, "%s\t%s\t%s\t\n", label, p, s) }
	row("", "plain", "sturdy")
	row("calls", fmt.Sprint(r.plain.Calls), fmt.Sprint(r.sturdy.Calls))
	row("success rate", pct(r.plain.SuccessRate()), pct(r.sturdy.SuccessRate()))
	for _, q := range []struct {
		name string
		q    float64
	}{{"latency p50", 0.50}, {"latency p95", 0.95}, {"latency p99", 0.99}, {"latency p99.9", 0.999}} {
		p, pok := r.plain.Percentile(q.q)
		s, sok := r.sturdy.Percentile(q.q)
		row(q.name, ms(p, pok), ms(s, sok))
	}
	row("backend requests", fmt.Sprint(r.plain.Backend), fmt.Sprint(r.sturdy.Backend))
	row("extra backend load", signedPct(r.plain.ExtraLoad()), signedPct(r.sturdy.ExtraLoad()))
	ps, ss := r.plain.Shares(), r.sturdy.Shares()
	row("served by primary ("+primaryModel+")", pct(ps[0]), pct(ss[0]))
	row("served by fallback ("+fallbackModel+")", pct(ps[1]), pct(ss[1]))
	row(fmt.Sprintf("expected quality (Q=%.2f, Q'=%.2f)", primaryQuality, fallbackQuality), num(r.plain.Quality()), num(r.sturdy.Quality()))
	tw.Flush()
	fmt.Fprintf(w, "latency: over all calls, a failed call counted at its time to fail; extra backend load = (backend requests − calls) / calls;\n")
	fmt.Fprintf(w, "shares are of the successful calls; expected quality = Σ share × quality = (1−r)·Q + r·Q' (chain fallbacks: %d)\n\n", r.chainFB)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "endpoint\tfault\tplain calls\tsturdy calls\tejections\tMTBF\tMTTR\tavailability\t")
	for _, e := range r.endpoints {
		fault := e.Fault
		if fault == "" {
			fault = "-"
		}
		ej, mtbf, mttr, av := "-", "-", "-", "-"
		if e.HasHealth {
			h := e.Health
			ej = fmt.Sprint(h.Failures)
			mtbf, mttr, av = dur(h.MTBF), dur(h.MTTR), fmt.Sprintf("%.4f", h.Availability)
			if h.Failures == 0 {
				mtbf, mttr = "> "+dur(h.MTBF), "-"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", e.Name, fault, e.PlainReq, e.SturdyReq, ej, mtbf, mttr, av)
	}
	tw.Flush()
	fmt.Fprintf(w, "calls = chat completions each server received (attempts, hedges included); ejections, MTBF, MTTR and\n")
	fmt.Fprintf(w, "availability are sturdy's health tracker's figures (the plain client keeps none)\n\n")

	p := r.pool
	fmt.Fprintf(w, "primary pool, k of n = %d replicas up: estimate health.AtLeastK(k, availabilities above) vs measured\n", p.N)
	fmt.Fprintf(w, "(share of %d samples, one every 100 ms, with at least k replicas not ejected)\n", p.Samples)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "k\testimate\tmeasured\t")
	for k := 1; k <= p.N; k++ {
		fmt.Fprintf(tw, "%d\t%s\t%s\t\n", k, num(p.Estimate[k-1]), num(p.Measured[k-1]))
	}
	tw.Flush()
	if r.picture != "" {
		fmt.Fprintf(w, "\npicture: %s\n", r.picture)
	}
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}

func signedPct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", 100*f)
}

func num(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.4f", f)
}

func ms(d time.Duration, ok bool) string {
	if !ok {
		return "-"
	}
	m := float64(d) / float64(time.Millisecond)
	if m < 10 {
		return fmt.Sprintf("%.1f ms", m)
	}
	return fmt.Sprintf("%.0f ms", m)
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
