package sim

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivethrottler"
	"github.com/failsafe-go/failsafe-go/failsafehttp"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
)

// learnedQualityFallback is the fallback tier's quality in scenario 8
// (the primary's is 1): the expected quality's yardstick.
const learnedQualityFallback = 0.8

// LearnedCapacity is scenario 8: the 429 storm of scenario 4, long enough
// for learning to settle, with nothing configured: sturdy learns each
// primary endpoint's rate from its 429s and successes (and, in one
// condition, from OpenAI-style rate-limit headers).
func LearnedCapacity(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const capacity, offered, retryAfter = 200.0, 400.0, time.Second
	calm, storm, after := o.dur(time.Second), o.dur(30*time.Second), o.dur(2*time.Second)
	settle := o.dur(5 * time.Second) // the steady state is the storm after this
	fallback := BackendConfig{Name: "fallback", Slots: 512, Median: 80 * time.Millisecond, Sigma: 0.3}
	primary := func(name string) BackendConfig {
		return BackendConfig{Name: name, Slots: 512, Median: 40 * time.Millisecond, Sigma: 0.3,
			RPS: capacity, Burst: capacity / 10, RetryAfter: retryAfter, Quota: "key"}
	}
	one := []BackendConfig{primary("primary"), fallback}
	oneHdr := []BackendConfig{primary("primary"), fallback}
	oneHdr[0].RateHeaders = true
	three := []BackendConfig{primary("primary-a"), primary("primary-b"), primary("primary-c"), fallback}
	load := Load{Phases: []Phase{{calm, 100}, {storm, offered}, {after, 100}}, Timeout: 5 * time.Second}
	specs := []runSpec{
		{Condition: "1 replica", Backends: one, Load: load},
		{Condition: "1 replica, x-ratelimit headers", Backends: oneHdr, Load: load},
		{Condition: "3 replicas, one key", Backends: three, Load: load},
	}
	if o.Short {
		specs = specs[:1]
	}
	isPrimary := func(name string) bool { return strings.HasPrefix(name, "primary") }
	split := func(e *env) (prim, fb []int) {
		for i, n := range e.Names {
			if isPrimary(n) {
				prim = append(prim, i)
			} else {
				fb = append(fb, i)
			}
		}
		return prim, fb
	}
	sturdy := func(limit ratelimit.Limit, opts ...httpmw.Option) func(e *env) (*client, error) {
		return func(e *env) (*client, error) {
			base := NewBase()
			prim, fb := split(e)
			var peps, feps []httpmw.Endpoint
			for _, i := range prim {
				peps = append(peps, httpmw.URL(e.Names[i], e.URLs[i], nil))
			}
			for _, i := range fb {
				feps = append(feps, httpmw.URL(e.Names[i], e.URLs[i], nil))
			}
			tr, err := httpmw.NewTransport(base, append([]httpmw.Option{
				httpmw.WithTier(degrade.Tier{Name: "primary", Model: "m", Limit: limit}, peps...),
				httpmw.WithTier(degrade.Tier{Name: "fallback", Model: "small", Quality: learnedQualityFallback}, feps...),
				httpmw.WithBalancer(balancer.Config{Seed: e.Seed + 1})}, opts...)...)
			if err != nil {
				return nil, err
			}
			return &client{Call: HTTPCall(tr), Close: func() { _ = tr.Close(); base.CloseIdleConnections() }}, nil
		}
	}
	peer := func(wrap func(rt http.RoundTripper) http.RoundTripper) func(e *env) (*client, error) {
		return httpClient(func(base *http.Transport, e *env) http.RoundTripper {
			prim, fb := split(e)
			var pu, fu []string
			for _, i := range prim {
				pu = append(pu, e.URLs[i])
			}
			for _, i := range fb {
				fu = append(fu, e.URLs[i])
			}
			return &FallbackRT{Primary: wrap(NewRoundRobin(base, pu)), Fallback: NewRoundRobin(base, fu)}
		})
	}
	clients := []clientSpec{
		{Name: "failsafe-go AdaptiveThrottler", New: peer(func(rt http.RoundTripper) http.RoundTripper {
			return failsafehttp.NewRoundTripper(rt, adaptivethrottler.NewBuilder[*http.Response]().
				HandleIf(func(r *http.Response, err error) bool { return retryable(r, err) }).
				WithFailureRateThreshold(0.5, 10, 2*time.Minute).Build())
		})},
		{Name: "sturdy, learning off (Retry-After only)", New: sturdy(ratelimit.Limit{}, noLearning)},
		{Name: "sturdy, limit 190 req/s (configured)", New: sturdy(ratelimit.Limit{RequestsPerSecond: 0.95 * capacity, Burst: 10})},
		{Name: "sturdy (defaults: learned)", New: sturdy(ratelimit.Limit{})},
	}
	if o.Short {
		clients = clients[3:]
	}
	bucketD := 100 * time.Millisecond
	nb := func(d time.Duration) int { return int(d / bucketD) }
	rows, err := suite(ctx, o, 8, specs, clients, func(row *Row, run *Run, e *env, _ map[string]float64, rep int) {
		n := nb(calm + storm + after)
		prim, _ := split(e)
		att, lim := make([]float64, n), make([]float64, n)
		for _, i := range prim {
			for j, v := range e.Series.Get(e.Names[i], n) {
				att[j] += v
			}
			for j, v := range e.Series.Get(e.Names[i]+"/429", n) {
				lim[j] += v
			}
		}
		sum := func(xs []float64, from, to time.Duration) float64 {
			s := 0.0
			for i := nb(from); i < nb(to) && i < len(xs); i++ {
				s += xs[i]
			}
			return s
		}
		served := make([]float64, n)
		calls, primCalls, fbCalls := 0.0, 0.0, 0.0
		for _, r := range run.Records {
			i := nb(r.At)
			if i >= n {
				continue
			}
			if r.OK && isPrimary(r.Served) {
				served[i]++
			}
			if r.At >= calm && r.At < calm+storm {
				calls++
				if r.OK && isPrimary(r.Served) {
					primCalls++
				} else if r.OK {
					fbCalls++
				}
			}
		}
		reps := float64(max(1, o.Reps))
		perCap := func(xs []float64, from, to time.Duration) float64 {
			return sum(xs, from, to) / (to - from).Seconds() / capacity
		}
		stormEnd := calm + storm
		servedStorm, servedSteady := perCap(served, calm, stormEnd), perCap(served, calm+settle, stormEnd)
		attStorm, attSteady := perCap(att, calm, stormEnd), perCap(att, calm+settle, stormEnd)
		row.Extra["served"] += servedStorm / reps
		row.Extra["servedSteady"] += servedSteady / reps
		row.Extra["servedMin"] = minKnown(row.Extra, "servedMin", servedStorm)
		row.Extra["attempts"] += attStorm / reps
		row.Extra["attemptsSteady"] += attSteady / reps
		row.Extra["attemptsMax"] = math.Max(row.Extra["attemptsMax"], attStorm)
		if a := sum(att, calm, stormEnd); a > 0 {
			row.Extra["refused"] += sum(lim, calm, stormEnd) / a / reps
			row.Extra["refusedSteady"] += sum(lim, calm+settle, stormEnd) / math.Max(1, sum(att, calm+settle, stormEnd)) / reps
		}
		// Expected quality against the best achievable: the primary
		// serving its capacity and the fallback the rest.
		if calls > 0 {
			q := (primCalls + learnedQualityFallback*fbCalls) / calls
			p := math.Min(1, capacity/offered)
			best := p + (1-p)*learnedQualityFallback
			row.Extra["quality"] += q / best / reps
		}
		o.logf("scenario 8 rep %d %-32s %-40s served %.3f× (steady %.3f×) attempts %.3f× (steady %.3f×) 429s %.2f%%",
			rep+1, row.Condition, row.Client, servedStorm, servedSteady, attStorm, attSteady,
			100*sum(lim, calm, stormEnd)/math.Max(1, sum(att, calm, stormEnd)))
	})
	x := func(v float64) string { return fmt.Sprintf("%.3f×", v) }
	res := &Result{ID: 8, Title: "Learned capacity (429 storm, nothing configured)", Rows: rows,
		Columns: []Column{
			{Head: "primary served ÷ capacity in the storm (mean; worst rep)", Key: "served", Format: x},
			{Head: "same, after the first 5s", Key: "servedSteady", Format: x},
			{Head: "primary attempts ÷ capacity in the storm (mean)", Key: "attempts", Format: x},
			{Head: "same, after the first 5s", Key: "attemptsSteady", Format: x},
			{Head: "primary attempts answered 429 (storm)", Key: "refused", Format: pct},
			{Head: "same, after the first 5s", Key: "refusedSteady", Format: pct},
			{Head: "expected quality ÷ best achievable (storm)", Key: "quality", Format: func(v float64) string { return fmt.Sprintf("%.3f", v) }},
		},
		Setup: fmt.Sprintf("The 429 storm of scenario 4, longer: a primary model limited to %.0f req/s (token bucket, burst %.0f) that answers 429 "+
			"with Retry-After: %.0f above it, median 40 ms; a fallback model (median 80 ms, unlimited, quality %.1f against the primary's 1). "+
			"Open-loop Poisson load: 100 req/s for %.0fs, %.0f req/s (2× the limit) for %.0fs, 100 req/s for %.0fs; timeout 5s. Conditions: "+
			"one primary replica; the same replica sending OpenAI-style x-ratelimit-limit/-remaining/-reset-requests headers on every answer "+
			"(limit = the bucket's burst, remaining = whole tokens left, reset = time until full, read when the answer is sent); "+
			"three primary replicas sharing the one bucket (one provider key), each 429 cooling only the replica that said it. "+
			"No sturdy row but the reference configures a limit. Best achievable expected quality is (capacity/offered)·1 + rest·%.1f. "+
			"The steady-state columns leave out the first %.0fs of the storm, while learning finds the limit.",
			capacity, capacity/10, retryAfter.Seconds(), learnedQualityFallback, calm.Seconds(), offered, storm.Seconds(), after.Seconds(),
			learnedQualityFallback, settle.Seconds())}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	for _, sp := range specs {
		s := res.Row(sp.Condition, "sturdy (defaults: learned)")
		if s == nil {
			continue
		}
		at := sp.Condition + ": sturdy learned: "
		res.Checks = append(res.Checks,
			Check{Target: at + "primary served ≥ 0.9× capacity (storm)", Got: fmt.Sprintf("%s (worst rep %s; after 5s %s)", x(s.Extra["served"]), x(s.Extra["servedMin"]), x(s.Extra["servedSteady"])), Met: s.Extra["servedMin"] >= 0.9},
			Check{Target: at + "primary attempts ≤ 1.1× capacity (storm)", Got: fmt.Sprintf("%s (worst rep %s)", x(s.Extra["attempts"]), x(s.Extra["attemptsMax"])), Met: s.Extra["attemptsMax"] <= 1.1},
			Check{Target: at + "100% success", Got: Pct(s.Success()), Met: s.OK == s.Calls},
			Check{Target: at + "expected quality within 2% of the best achievable", Got: fmt.Sprintf("%.3f of best", s.Extra["quality"]), Met: s.Extra["quality"] >= 0.98},
		)
		if strings.Contains(sp.Condition, "headers") {
			res.Checks = append(res.Checks, Check{Target: at + "≤ 1% of primary attempts refused with 429", Got: pct(s.Extra["refused"]), Met: s.Extra["refused"] <= 0.01})
		}
	}
	return res, nil
}

// minKnown is the smaller of v and m[key], or v when m has no key.
func minKnown(m map[string]float64, key string, v float64) float64 {
	if old, ok := m[key]; ok {
		return math.Min(old, v)
	}
	return v
}
