package sim

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/httpmw"
)

// The scenarios of issue 15's "listen to the servers" that concern the
// balancer: a replica's return to its share once it has recovered, and
// load reports.

// shareIn is name's share of the attempts the backends received in the
// 100 ms buckets [from, to) of e's series.
func shareIn(e *env, name string, from, to time.Duration) float64 {
	bucket := 100 * time.Millisecond
	i0, i1 := int(from/bucket), int(to/bucket)
	mine, all := 0.0, 0.0
	for _, n := range e.Names {
		for i, v := range e.Series.Get(n, i1) {
			if i < i0 {
				continue
			}
			all += v
			if n == name {
				mine += v
			}
		}
	}
	if all == 0 {
		return 0
	}
	return mine / all
}

// perSeed formats one figure per repetition, with its seed.
func perSeed(o Options, id int, vals []float64, f func(float64) string) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprintf("seed %d: %s", o.Seed+uint64(id)*100+uint64(i), f(v))
	}
	return strings.Join(parts, ", ")
}

// ---------------------------------------------------------------- 12

// Recovery is scenario 12: the slow-replica experiment (scenario 2) run
// long enough to watch the slow replica come back, measuring its share of
// the attempts once it has recovered.
func Recovery(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const n, rate = 11, 400.0
	var bcs []BackendConfig
	for i := range n {
		bcs = append(bcs, BackendConfig{Name: fmt.Sprintf("b%d", i), Slots: 8, Median: 50 * time.Millisecond, Sigma: 0.3})
	}
	from, to := o.dur(time.Second), o.dur(3500*time.Millisecond)
	total := to + o.dur(5*time.Second)
	spec := runSpec{
		Condition: "b0 at 2s, then well",
		Backends:  bcs,
		Load:      Load{Phases: []Phase{{total, rate}}, Timeout: time.Second},
		Events: func(ctx context.Context, e *env) {
			if at(ctx, e, from, func() { e.Backends[0].Pin(2 * time.Second) }) {
				at(ctx, e, to, func() { e.Backends[0].Pin(0) })
			}
		},
	}
	noEject := httpmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1})
	clients := []clientSpec{
		{Name: "least-outstanding", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper { return NewLeastOutstanding(base, e.URLs) })},
		{Name: "sturdy (defaults)", New: sturdyClient()},
		{Name: balancerOnly, New: sturdyClient(noEject)},
		{Name: balancerOnlyOld, New: sturdyClient(noEject, httpmw.WithBalancer(balancer.Config{PeakDecay: -1}))},
	}
	if o.Short {
		clients = clients[1:3]
	}
	fair := 1.0 / n
	windows := []struct {
		key      string
		from, to time.Duration
	}{{"s1", 0, time.Second}, {"s2", time.Second, 2 * time.Second}, {"s3", 2 * time.Second, 3 * time.Second}, {"s5", 4 * time.Second, 5 * time.Second}}
	third := map[string][]float64{}
	// others is, per client, the third-second share of every replica that
	// never slowed, in every repetition: how far a steady replica's share
	// in one second strays from fair under the same client, the yardstick
	// for b0's.
	others := map[string][]float64{}
	rows, err := suite(ctx, o, 12, []runSpec{spec}, clients, func(row *Row, _ *Run, e *env, _ map[string]float64, _ int) {
		for _, name := range e.Names[1:] {
			others[row.Client] = append(others[row.Client], shareIn(e, name, to+o.dur(2*time.Second), to+o.dur(3*time.Second))/fair)
		}
		for _, w := range windows {
			s := shareIn(e, "b0", to+o.dur(w.from), to+o.dur(w.to)) / fair
			row.Extra[w.key] += s / float64(max(1, o.Reps))
			if w.key == "s3" {
				third[row.Client] = append(third[row.Client], s)
				row.Extra["s3min"] = minOr(row.Extra["s3min"], s, len(third[row.Client]) == 1)
			}
		}
	})
	for _, r := range rows {
		r.Extra["o3low"] = shareBelow(others[r.Client], 0.8)
	}
	pctFair := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	res := &Result{ID: 12, Title: "Recovered replica back to its share", Rows: rows,
		Columns: []Column{
			{Head: "b0's share, 1st s after recovery (% of fair)", Key: "s1", Format: pctFair},
			{Head: "2nd s", Key: "s2", Format: pctFair},
			{Head: "3rd s", Key: "s3", Format: pctFair},
			{Head: "3rd s, worst rep", Key: "s3min", Format: pctFair},
			{Head: "5th s", Key: "s5", Format: pctFair},
			{Head: "3rd s, replicas that never slowed: share of their seconds below 80% of fair", Key: "o3low", Format: pctFair},
		},
		Setup: fmt.Sprintf("Scenario 2's pool, run longer: 11 backends, lognormal service time with median 50 ms (σ = 0.3), 8 slots each; "+
			"%.0f req/s open-loop for %.1fs; b0 answers in 2s from %.1fs to %.1fs, then normally again. A call succeeds if it answers 200 "+
			"within 1s of its scheduled time. The share columns are b0's share of all attempts in each second after it recovered, as a "+
			"percentage of its fair share (1/11), averaged over repetitions. Least-outstanding is the peer the issue compares with "+
			"(its counts drain as soon as b0 answers again); \"pure Peak-EWMA\" is sturdy before this change (Finagle's and Linkerd's estimator).",
			rate, total.Seconds(), from.Seconds(), to.Seconds())}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	for _, name := range []string{"sturdy (defaults)", balancerOnly} {
		if r := res.Row(spec.Condition, name); r != nil {
			res.Checks = append(res.Checks,
				// The target is on b0's share, the mean over repetitions:
				// one repetition's second is a sample of about 36 attempts
				// that P2C's two random choices spread unevenly even among
				// replicas that never slowed (the last column), so "every
				// rep" would test that noise rather than b0's recovery.
				Check{Target: name + ": b0 back to ≥ 80% of its share within 3s of recovery (3rd second, mean over reps)",
					Got: fmt.Sprintf("%s (per seed: %s)", pctFair(r.Extra["s3"]), perSeed(o, 12, third[r.Client], pctFair)), Met: r.Extra["s3"] >= 0.8},
				Check{Target: name + ": 100.00% within 1s",
					Got: fmt.Sprintf("%s (%d of %d calls failed)", Pct(r.Success()), r.Calls-r.OK, r.Calls), Met: r.OK == r.Calls})
		}
	}
	if r := res.Row(spec.Condition, "sturdy (defaults)"); r != nil && r.Extra["s5"] < 0.1 {
		res.Notes = append(res.Notes, "At defaults b0 stayed out (below 10% of its share in the 5th second after it recovered): "+
			"health does not count attempts cut by the attempt timeout, so compare the rows with ejection off, which show what the "+
			"balancer alone does, to tell whose rule kept it out.")
	}
	if r := res.Row(spec.Condition, balancerOnlyOld); r != nil {
		res.Notes = append(res.Notes, "Pure Peak-EWMA (ejection off), 3rd second after recovery: "+perSeed(o, 12, third[r.Client], pctFair)+
			". Its estimate of b0 (the attempt timeout's doubling penalties) fades only with the 10s Decay, so b0 is tried "+
			"again late and its first fast answers move the estimate little. sturdy's estimator keeps each endpoint's usual latency "+
			"(Peak-EWMA of all but its Timeouts) and lets what Timeouts add above it fade over PeakDecay (500ms), each answer in time "+
			"halving what is left of it; see the balancer package doc.")
	}
	if r := res.Row(spec.Condition, "sturdy (defaults)"); r != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("One second holds about %.0f attempts for a replica's fair share, and P2C draws two replicas "+
			"at random for each: in the third second after b0 recovered, the ten replicas that never slowed were below 80%% of their "+
			"share in %.0f%% of their seconds (sturdy, defaults; least-outstanding: %s), so the every-rep figure for b0 carries that "+
			"much chance of a miss per repetition whatever b0's estimate is.", rate/n, 100*r.Extra["o3low"], lowOf(res, spec.Condition, "least-outstanding")))
	}
	return res, nil
}

// lowOf formats the o3low figure of client's row, or "–".
func lowOf(res *Result, condition, client string) string {
	if r := res.Row(condition, client); r != nil {
		return fmt.Sprintf("%.0f%%", 100*r.Extra["o3low"])
	}
	return "–"
}

// shareBelow is the share of vals below lim.
func shareBelow(vals []float64, lim float64) float64 {
	n := 0
	for _, v := range vals {
		if v < lim {
			n++
		}
	}
	return float64(n) / float64(max(1, len(vals)))
}

const (
	balancerOnly    = "sturdy (health ejection off)"
	balancerOnlyOld = "sturdy (health ejection off, pure Peak-EWMA: PeakDecay -1)"
)

func minOr(cur, v float64, first bool) float64 {
	if first || v < cur {
		return v
	}
	return cur
}

// ---------------------------------------------------------------- 13

// LoadReports is scenario 13: one replica's latency is still normal, but
// the queue it reports is five times the others'.
func LoadReports(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const n, rate, others, long = 5, 300.0, 4.0, 20.0
	var bcs []BackendConfig
	for i := range n {
		q := others
		if i == 0 {
			q = long
		}
		bcs = append(bcs, BackendConfig{Name: fmt.Sprintf("b%d", i), Slots: 8, Median: 50 * time.Millisecond, Sigma: 0.3, ReportQueue: q})
	}
	spec := runSpec{
		Condition: "b0 reports 5× the queue",
		Backends:  bcs,
		Load:      Load{Phases: []Phase{{o.dur(4 * time.Second), rate}}, Warmup: o.dur(500 * time.Millisecond), Timeout: 5 * time.Second},
	}
	clients := []clientSpec{
		{Name: "round-robin", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper { return NewRoundRobin(base, e.URLs) })},
		{Name: "sturdy (latency only)", New: sturdyClient()},
		{Name: "sturdy + WithLoadReports", New: sturdyClient(httpmw.WithLoadReports())},
	}
	if o.Short {
		clients = clients[1:]
	}
	shares := map[string][]float64{}
	rows, err := suite(ctx, o, 13, []runSpec{spec}, clients, func(row *Row, _ *Run, e *env, _ map[string]float64, _ int) {
		s := shareIn(e, "b0", o.dur(500*time.Millisecond), o.dur(4*time.Second))
		shares[row.Client] = append(shares[row.Client], s)
		row.Extra["b0"] += s / float64(max(1, o.Reps))
	})
	res := &Result{ID: 13, Title: "Load reports (ORCA)", Rows: rows,
		Columns: []Column{{Head: "b0's share of attempts (fair 20%)", Key: "b0", Format: pct}},
		Setup: fmt.Sprintf("5 backends, lognormal service time with median 50 ms (σ = 0.3), 8 slots each; %.0f req/s open-loop for %.1fs "+
			"(first %.1fs left out). Asked for a load report, each answers as vLLM does (Endpoint-Load-Metrics: TEXT "+
			"named_metrics.kv_cache_usage_perc=…, named_metrics.num_requests_waiting=…): its slots in use as the KV-cache share, and "+
			"its requests waiting plus a queue of other clients' requests that this client does not see: %.0f for b0, %.0f for the others. "+
			"b0's latency stays normal: those requests are not simulated (they would slow it down soon, which is why a long reported "+
			"queue is worth avoiding before the latency shows it). llm-d's inference scheduler scores replicas by these two figures "+
			"(queue and KV-cache utilization scorers).",
			rate, o.dur(4*time.Second).Seconds(), o.dur(500*time.Millisecond).Seconds(), long, others)}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	with, without := res.Row(spec.Condition, "sturdy + WithLoadReports"), res.Row(spec.Condition, "sturdy (latency only)")
	if with != nil && without != nil {
		res.Checks = append(res.Checks, Check{
			Target: "b0 gets less traffic with load reports than with latency alone (every rep)",
			Got:    "with reports " + perSeed(o, 13, shares[with.Client], pct) + "; latency only " + perSeed(o, 13, shares[without.Client], pct),
			Met:    allBelow(shares[with.Client], shares[without.Client]),
		})
	}
	return res, nil
}

func allBelow(a, b []float64) bool {
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] >= b[i] {
			return false
		}
	}
	return true
}
