package sim

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivethrottler"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Scenario is one simulation of BENCHMARKS.md.
type Scenario struct {
	ID   int
	Name string
	Run  func(ctx context.Context, o Options) (*Result, error)
}

// Scenarios lists the simulations in report order.
var Scenarios = []Scenario{
	{1, "heterogeneous", Heterogeneous},
	{2, "slow-replica", SlowReplica},
	{3, "failing-replica", FailingReplica},
	{4, "429-storm", Storm429},
	{5, "hedging", Hedging},
	{6, "random-503s", Random503s},
	{7, "total-outage", TotalOutage},
	{8, "learned-capacity", LearnedCapacity},
	{9, "fleet-on-redis", FleetOnRedis},
	{12, "recovery", Recovery},
	{13, "load-reports", LoadReports},
}

func ms(v float64) string  { return fmt.Sprintf("%.0f ms", v) }
func pct(v float64) string { return Pct(v) }
func xcap(v float64) string {
	return fmt.Sprintf("%.2f×", v)
}

// ---------------------------------------------------------------- 1

// Heterogeneous is scenario 1: five replicas of unequal speed.
func Heterogeneous(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const sigma = 0.5
	means := []time.Duration{20, 20, 20, 40, 80}
	var bcs []BackendConfig
	capacity := 0.0
	for i, m := range means {
		m *= time.Millisecond
		bcs = append(bcs, BackendConfig{Name: fmt.Sprintf("b%d", i), Slots: 8, Median: MeanToMedian(m, sigma), Sigma: sigma})
		capacity += 8 / m.Seconds()
	}
	utils := []float64{0.60, 0.85}
	if o.Short {
		utils = []float64{0.85}
	}
	var specs []runSpec
	for _, u := range utils {
		specs = append(specs, runSpec{
			Condition: fmt.Sprintf("%.0f%%", 100*u),
			Backends:  bcs,
			Load:      Load{Phases: []Phase{{o.dur(2500 * time.Millisecond), u * capacity}}, Warmup: o.dur(500 * time.Millisecond), Timeout: 10 * time.Second},
		})
	}
	clients := []clientSpec{
		{Name: "round-robin", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper { return NewRoundRobin(base, e.URLs) })},
		{Name: "least-outstanding", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper { return NewLeastOutstanding(base, e.URLs) })},
		{Name: "sturdy httpmw (P2C Peak-EWMA)", New: sturdyClient()},
		{Name: "gRPC: grpc-go round_robin", GRPC: true, New: grpcPoolClient("round_robin")},
		{Name: "gRPC: sturdy_p2c_ewma", GRPC: true, New: grpcPoolClient("sturdy_p2c_ewma")},
	}
	if o.Short {
		clients = []clientSpec{clients[0], clients[2], clients[4]}
	}
	rows, err := suite(ctx, o, 1, specs, clients, nil)
	res := &Result{ID: 1, Title: "Heterogeneous replicas", Rows: rows,
		Setup: fmt.Sprintf("5 backends with mean service times 20/20/20/40/80 ms (lognormal, σ = %.1f), 8 slots each "+
			"(capacity %.0f req/s); open-loop Poisson load at 60%% and 85%% of capacity for %.1fs, the first %.2fs left out as warm-up; "+
			"10s timeout. HTTP over loopback; the gRPC rows run the same backends behind grpc-go with a manual resolver.",
			sigma, capacity, o.dur(2500*time.Millisecond).Seconds(), o.dur(500*time.Millisecond).Seconds())}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	last := specs[len(specs)-1].Condition
	for _, pair := range [][2]string{{"sturdy httpmw (P2C Peak-EWMA)", "round-robin"}, {"gRPC: sturdy_p2c_ewma", "gRPC: grpc-go round_robin"}} {
		s, rr := res.Row(last, pair[0]), res.Row(last, pair[1])
		if s == nil || rr == nil {
			continue
		}
		ratio := float64(s.P(99)) / float64(rr.P(99))
		res.Checks = append(res.Checks, Check{
			Target: fmt.Sprintf("%s p99 ≤ ½ of %s p99 at %s", pair[0], pair[1], last),
			Got:    fmt.Sprintf("%s ms vs %s ms (%.3f×)", Ms(s.P(99)), Ms(rr.P(99)), ratio),
			Met:    ratio <= 0.5,
		})
	}
	res.Plot = "scenario1.png"
	if o.PlotDir != "" {
		var pr []*Row
		for _, r := range rows {
			if r.Condition == last {
				pr = append(pr, r)
			}
		}
		if err := QuantilePlot(o.PlotDir+"/"+res.Plot, "Heterogeneous replicas at "+last+" utilization", pr); err != nil {
			return res, err
		}
	}
	return res, nil
}

// ---------------------------------------------------------------- 2

// SlowReplica is scenario 2, the Linkerd experiment: one of eleven
// replicas turns slow for part of the run.
func SlowReplica(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	var bcs []BackendConfig
	for i := range 11 {
		bcs = append(bcs, BackendConfig{Name: fmt.Sprintf("b%d", i), Slots: 8, Median: 50 * time.Millisecond, Sigma: 0.3})
	}
	total, from, to := o.dur(5*time.Second), o.dur(time.Second), o.dur(3500*time.Millisecond)
	const rate = 400.0
	spec := runSpec{
		Condition: "b0 at 2s",
		Backends:  bcs,
		Load:      Load{Phases: []Phase{{total, rate}}, Timeout: time.Second},
		Events: func(ctx context.Context, e *env) {
			if at(ctx, e, from, func() { e.Backends[0].Pin(2 * time.Second) }) {
				at(ctx, e, to, func() { e.Backends[0].Pin(0) })
			}
		},
	}
	clients := []clientSpec{
		{Name: "round-robin", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper { return NewRoundRobin(base, e.URLs) })},
		{Name: "least-outstanding", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper { return NewLeastOutstanding(base, e.URLs) })},
		{Name: "round-robin, 3 attempts", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper {
			return &NaiveRetry{Next: NewRoundRobin(base, e.URLs), Attempts: 3}
		})},
		{Name: "sturdy (defaults)", New: sturdyClient()},
		{Name: "sturdy (no attempt timeout)", New: sturdyClient(httpmw.WithFailover(failover.Config{AttemptTimeout: -1}))},
		{Name: "sturdy (+ 250ms attempt timeout)", New: sturdyClient(httpmw.WithFailover(failover.Config{AttemptTimeout: 250 * time.Millisecond}))},
	}
	if o.Short {
		clients = []clientSpec{clients[0], clients[3]}
	}
	rows, err := suite(ctx, o, 2, []runSpec{spec}, clients, nil)
	res := &Result{ID: 2, Title: "Transient slow replica (the Linkerd experiment)", Rows: rows,
		Setup: fmt.Sprintf("11 backends, lognormal service time with median 50 ms (σ = 0.3), 8 slots each; %.0f req/s open-loop for %.1fs; "+
			"backend b0 answers in 2s from %.1fs to %.1fs. A call succeeds if it answers 200 within 1s of its scheduled time. "+
			"(Linkerd's \"Beyond Round Robin\" reported ~95%% success for round-robin and ~99.9%% for Peak-EWMA.)",
			rate, total.Seconds(), from.Seconds(), to.Seconds())}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	for _, r := range rows {
		if r.Client == "sturdy (defaults)" {
			res.Checks = append(res.Checks, Check{Target: r.Client + ": 100.00% within 1s",
				Got: fmt.Sprintf("%s (%d of %d calls failed)", Pct(r.Success()), r.Calls-r.OK, r.Calls), Met: r.OK == r.Calls})
		}
		if len(r.Client) >= 6 && r.Client[:6] == "sturdy" && r.Client != "sturdy (no attempt timeout)" {
			res.Checks = append(res.Checks, Check{Target: r.Client + " success ≥ 99.9%",
				Got: fmt.Sprintf("%s (%d of %d calls failed)", Pct(r.Success()), r.Calls-r.OK, r.Calls), Met: r.Success() >= 0.999})
		}
	}
	res.Notes = append(res.Notes, "Without an attempt timeout (or hedging) the calls sent to b0 just after it turned slow, before "+
		"b0's growing outstanding count and first slow answers made it look expensive to Peak-EWMA, cannot finish within 1s: "+
		"no balancer can save them, so the success rate depends on how many calls the run has in all. Linkerd measured over a longer run. "+
		"A per-attempt timeout lets failover move those calls to another replica in time; by default it is learned "+
		"(3 × p99 of the tier's recent successful attempts, at least 250 ms), so no configuration is needed.")
	res.Plot = "scenario2.png"
	if o.PlotDir != "" {
		if err := QuantilePlot(o.PlotDir+"/"+res.Plot, "One of 11 replicas at 2s (1s timeout)", rows); err != nil {
			return res, err
		}
	}
	return res, nil
}

// ---------------------------------------------------------------- 3

// FailingReplica is scenario 3: one of five replicas fails half its calls,
// then all of them.
func FailingReplica(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const sigma = 0.5
	var bcs []BackendConfig
	for i := range 5 {
		bcs = append(bcs, BackendConfig{Name: fmt.Sprintf("b%d", i), Slots: 8, Median: MeanToMedian(20*time.Millisecond, sigma), Sigma: sigma})
	}
	half, full, total := o.dur(500*time.Millisecond), o.dur(2500*time.Millisecond), o.dur(4500*time.Millisecond)
	const rate = 400.0
	spec := runSpec{
		Condition: "b4 fails",
		Backends:  bcs,
		Load:      Load{Phases: []Phase{{total, rate}}, Timeout: 2 * time.Second},
		Events: func(ctx context.Context, e *env) {
			if at(ctx, e, half, func() { e.Backends[4].SetFailProb(0.5) }) {
				at(ctx, e, full, func() { e.Backends[4].SetFailProb(1) })
			}
		},
	}
	since := func(e *env, t time.Time) float64 {
		return float64(t.Sub(e.Start.Add(half))) / float64(time.Millisecond)
	}
	clients := []clientSpec{
		{Name: "round-robin, 3 attempts", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper {
			return &NaiveRetry{Next: NewRoundRobin(base, e.URLs), Attempts: 3}
		})},
		{Name: "failsafe-go retry + breaker", New: func(e *env) (*client, error) {
			base := NewBase()
			brr := NewBreakerRoundRobin(base, e.Names, e.URLs)
			rt := failsafehttp.NewRoundTripper(brr, failsafehttp.NewRetryPolicyBuilder().WithMaxAttempts(3).Build())
			return &client{Call: HTTPCall(rt), Close: base.CloseIdleConnections, After: func(*Run) map[string]float64 {
				if t, ok := brr.Opened("b4"); ok {
					return map[string]float64{"eject": since(e, t)}
				}
				return nil
			}}, nil
		}},
		{Name: "sturdy", New: func(e *env) (*client, error) {
			base := NewBase()
			tr, err := sturdyTransport(e, base)
			if err != nil {
				return nil, err
			}
			var ejected time.Time
			return &client{
				Call:  HTTPCall(tr),
				Close: func() { _ = tr.Close(); base.CloseIdleConnections() },
				During: func(ctx context.Context) {
					tk := time.NewTicker(2 * time.Millisecond)
					defer tk.Stop()
					for {
						select {
						case <-ctx.Done():
							return
						case now := <-tk.C:
							if ejected.IsZero() && tr.State("b4") == health.Ejected {
								ejected = now
							}
						}
					}
				},
				After: func(*Run) map[string]float64 {
					if ejected.IsZero() {
						return nil
					}
					return map[string]float64{"eject": since(e, ejected)}
				},
			}, nil
		}},
	}
	if o.Short {
		clients = []clientSpec{clients[1], clients[2]}
	}
	samples := map[string][]float64{}
	rows, err := suite(ctx, o, 3, []runSpec{spec}, clients, func(row *Row, run *Run, e *env, extra map[string]float64, rep int) {
		// Isolation: from the start of the failures until the end of the
		// last 100 ms bucket in which b4 took ≥ 5% of the attempts (its
		// fair share is 20%).
		nb := int(total / (100 * time.Millisecond))
		first := int(half / (100 * time.Millisecond))
		sum := make([]float64, nb)
		for _, name := range e.Names {
			for i, v := range e.Series.Get(name, nb) {
				sum[i] += v
			}
		}
		b4 := e.Series.Get("b4", nb)
		last := first - 1
		for i := first; i < nb; i++ {
			if sum[i] > 0 && b4[i]/sum[i] >= 0.05 {
				last = i
			}
		}
		if last >= nb-1 {
			row.Extra["neverIsolated"]++
		} else {
			row.Extra["isolated"] = math.Max(row.Extra["isolated"], float64(last+1-first)*100)
		}
		att, fails := 0.0, 0.0
		for i := first; i < nb; i++ {
			att += sum[i]
			fails += b4[i]
		}
		row.Extra["b4share"] += fails / att / float64(max(1, o.Reps))
		if v, ok := extra["eject"]; ok {
			row.Extra["eject"] = math.Max(row.Extra["eject"], v)
		} else {
			row.Extra["never"]++
		}
		if rep == 0 {
			for i := range b4 {
				b4[i] *= 10 // per second
			}
			samples[row.Client] = b4
		}
	})
	for _, r := range rows {
		if r.Extra["never"] > 0 {
			delete(r.Extra, "eject")
		}
		if r.Extra["neverIsolated"] > 0 {
			delete(r.Extra, "isolated")
		}
	}
	res := &Result{ID: 3, Title: "Failing replica", Rows: rows,
		Columns: []Column{
			{Head: "time to eject b4 (worst rep)", Key: "eject", Format: ms},
			{Head: "time to isolate b4 (worst rep)", Key: "isolated", Format: ms},
			{Head: "b4's share of attempts while failing", Key: "b4share", Format: pct},
		},
		Setup: fmt.Sprintf("5 backends, mean 20 ms (lognormal, σ = 0.5), 8 slots each; %.0f req/s open-loop for %.1fs. "+
			"Backend b4 answers 500 to 50%% of its calls from %.1fs and to all of them from %.1fs. Timeout 2s. "+
			"Time to eject is from the start of the failures to sturdy's health ejection, or to the opening of b4's failsafe-go breaker "+
			"(one breaker per backend, ≥ 50%% failures over ≥ 20 calls in 10s, as sturdy's health default; failsafehttp's own breaker policy "+
			"would be one breaker for all five backends); \"–\" means it never happened. Time to isolate is from the start of the failures to the "+
			"end of the last 100 ms in which b4 still took ≥ 5%% of the attempts (its fair share is 20%%), whatever did the isolating.",
			rate, total.Seconds(), half.Seconds(), full.Seconds())}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	neverEjected := false
	if s := res.Row(spec.Condition, "sturdy"); s != nil {
		res.Checks = append(res.Checks,
			Check{Target: "sturdy success ≥ 99.9%", Got: Pct(s.Success()), Met: s.Success() >= 0.999},
			Check{Target: "sturdy extra load ≤ 10%", Got: fmt.Sprintf("%+.1f%%", 100*s.ExtraLoad()), Met: s.ExtraLoad() <= 0.10})
		got, met := "never ejected", false
		if v, ok := s.Extra["eject"]; ok {
			got, met = "ejected after "+ms(v), true
		}
		if v, ok := s.Extra["isolated"]; ok {
			got += "; isolated (b4 < 5% of attempts) after " + ms(v)
			if !met {
				got += ": P2C Peak-EWMA steered away before health saw enough failures to eject"
			}
		} else {
			got += "; never isolated"
		}
		_, isolated := s.Extra["isolated"]
		res.Checks = append(res.Checks, Check{Target: "sturdy time to eject (or isolate) b4 reported", Got: got, Met: met || isolated})
		neverEjected = !met
	}
	if neverEjected {
		res.Notes = append(res.Notes, "sturdy counts a failed attempt as slow (at least twice the endpoint's Peak-EWMA estimate, never below DefaultRTT), so P2C stops "+
			"sending to b4 within a few failures; health then never sees the 5 consecutive failures, or a failure rate of 50% over ≥ 20 calls, "+
			"that it needs to eject b4 (in at least one repetition it never did). The failing replica is isolated all the same; it keeps the small share of "+
			"attempts in the last column because Peak-EWMA decay lets it be tried again now and then, and each such failure is retried elsewhere.")
	}
	res.Plot = "scenario3.png"
	if o.PlotDir != "" {
		title := fmt.Sprintf("Attempts reaching b4 (fails 50%% from %.1fs, 100%% from %.1fs; first repetition)", half.Seconds(), full.Seconds())
		if err := TimeSeriesPlot(o.PlotDir+"/"+res.Plot, title, "attempts / s", samples, 0.1, 0); err != nil {
			return res, err
		}
	}
	return res, nil
}

// ---------------------------------------------------------------- 4

// FallbackRT sends a request to Primary and, if that fails (error, 429 or
// 5xx), to Fallback: LiteLLM-style fallbacks, the structure every peer of
// scenario 4 shares.
type FallbackRT struct {
	Primary, Fallback http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *FallbackRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		r.Body, _ = req.GetBody()
	}
	resp, err := t.Primary.RoundTrip(r)
	if err == nil && !retryable(resp, nil) {
		return resp, nil
	}
	if resp != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	if req.Context().Err() != nil {
		return nil, req.Context().Err()
	}
	r = req.Clone(req.Context())
	if req.GetBody != nil {
		r.Body, _ = req.GetBody()
	}
	return t.Fallback.RoundTrip(r)
}

// noLearning turns learned capacity off, for the rows that show sturdy
// without it.
var noLearning = httpmw.WithLimiter(ratelimit.Config{Learn: ratelimit.LearnConfig{Off: true}})

// Storm429 is scenario 4: the primary model's rate limit is exceeded
// two-fold, and a slower fallback model takes the excess.
func Storm429(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const capacity, retryAfter = 200.0, time.Second
	bcs := []BackendConfig{
		{Name: "primary", Slots: 512, Median: 40 * time.Millisecond, Sigma: 0.3, RPS: capacity, Burst: capacity / 10, RetryAfter: retryAfter},
		{Name: "fallback", Slots: 512, Median: 80 * time.Millisecond, Sigma: 0.3},
	}
	calm, storm, after := o.dur(500*time.Millisecond), o.dur(2500*time.Millisecond), o.dur(2500*time.Millisecond)
	spec := runSpec{
		Condition: "400 req/s",
		Backends:  bcs,
		Load:      Load{Phases: []Phase{{calm, 100}, {storm, 400}, {after, 100}}, Timeout: 5 * time.Second},
	}
	primary := func(e *env) string { return e.URLs[0] }
	fallback := func(e *env) string { return e.URLs[1] }
	peer := func(wrap func(rt http.RoundTripper) http.RoundTripper) func(e *env) (*client, error) {
		return httpClient(func(base *http.Transport, e *env) http.RoundTripper {
			return &FallbackRT{Primary: wrap(NewRoundRobin(base, []string{primary(e)})), Fallback: NewRoundRobin(base, []string{fallback(e)})}
		})
	}
	sturdy := func(limit ratelimit.Limit, opts ...httpmw.Option) func(e *env) (*client, error) {
		return func(e *env) (*client, error) {
			base := NewBase()
			tr, err := httpmw.NewTransport(base, append([]httpmw.Option{
				httpmw.WithTier(degrade.Tier{Name: "primary", Model: "m", Limit: limit}, httpmw.URL("primary", primary(e), nil)),
				httpmw.WithTier(degrade.Tier{Name: "fallback", Model: "small"}, httpmw.URL("fallback", fallback(e), nil)),
				httpmw.WithBalancer(balancer.Config{Seed: e.Seed + 1})}, opts...)...)
			if err != nil {
				return nil, err
			}
			return &client{Call: HTTPCall(tr), Close: func() { _ = tr.Close(); base.CloseIdleConnections() }}, nil
		}
	}
	clients := []clientSpec{
		{Name: "naive retry, 3 attempts", New: peer(func(rt http.RoundTripper) http.RoundTripper { return &NaiveRetry{Next: rt, Attempts: 3} })},
		{Name: "failsafe-go retry, 10% budget", New: peer(func(rt http.RoundTripper) http.RoundTripper {
			return failsafehttp.NewRoundTripper(rt, failsafehttp.NewRetryPolicyBuilder().WithMaxAttempts(3).
				WithBudget(budget.NewBuilder().WithMaxRate(0.1).Build()).Build())
		})},
		{Name: "failsafe-go SRE throttling (K=2)", New: peer(func(rt http.RoundTripper) http.RoundTripper {
			return failsafehttp.NewRoundTripper(rt, adaptivethrottler.NewBuilder[*http.Response]().
				HandleIf(func(r *http.Response, err error) bool { return retryable(r, err) }).
				WithFailureRateThreshold(0.5, 10, 2*time.Minute).Build())
		})},
		{Name: "sturdy degrade (limit 190 req/s)", New: sturdy(ratelimit.Limit{RequestsPerSecond: 0.95 * capacity, Burst: 10})},
		{Name: "sturdy degrade (Retry-After only)", New: sturdy(ratelimit.Limit{}, noLearning)},
		{Name: "sturdy degrade (Retry-After only, no wait)", New: sturdy(ratelimit.Limit{}, noLearning, httpmw.WithFailover(failover.Config{MaxRetryAfterWait: -1}))},
		{Name: "sturdy degrade (defaults: learned)", New: sturdy(ratelimit.Limit{})},
	}
	if o.Short {
		clients = []clientSpec{clients[0], clients[3]}
	}
	bucket := 100 * time.Millisecond
	nb := func(d time.Duration) int { return int(d / bucket) }
	samples := map[string][]float64{}
	rows, err := suite(ctx, o, 4, []runSpec{spec}, clients, func(row *Row, run *Run, e *env, _ map[string]float64, rep int) {
		n := nb(calm + storm + after)
		att := e.Series.Get("primary", n)
		inStorm := 0.0
		for i := nb(calm); i < nb(calm+storm); i++ {
			inStorm += att[i]
		}
		ratio := inStorm / storm.Seconds() / capacity
		row.Extra["primary"] = math.Max(row.Extra["primary"], ratio)
		// Share served by the primary per bucket after the storm.
		served, calls := make([]float64, n), make([]float64, n)
		fb := 0.0
		stormCalls := 0.0
		for _, r := range run.Records {
			i := nb(r.At)
			if i >= n {
				continue
			}
			calls[i]++
			if r.OK && r.Served == "primary" {
				served[i]++
			}
			if i >= nb(calm) && i < nb(calm+storm) {
				stormCalls++
				if r.Served == "fallback" {
					fb++
				}
			}
		}
		rec := 0.0
		for i := n - 1; i >= nb(calm+storm); i-- {
			if calls[i] > 0 && served[i]/calls[i] < 0.95 {
				rec = float64(i+1-nb(calm+storm)) * float64(bucket/time.Millisecond)
				break
			}
		}
		row.Extra["recovery"] = math.Max(row.Extra["recovery"], rec)
		row.Extra["fallback"] += fb / stormCalls / float64(max(1, o.Reps))
		if rep == 0 {
			for i := range att {
				att[i] *= 10 // per second
			}
			samples[row.Client] = att
		}
	})
	res := &Result{ID: 4, Title: "429 storm", Rows: rows,
		Columns: []Column{
			{Head: "primary attempts ÷ capacity in the storm (worst rep)", Key: "primary", Format: xcap},
			{Head: "served by fallback in the storm", Key: "fallback", Format: pct},
			{Head: "back on primary after the storm (worst rep)", Key: "recovery", Format: ms},
		},
		Setup: fmt.Sprintf("Primary model: one backend that serves %.0f req/s (token bucket, burst %.0f) and answers 429 with Retry-After: %.0f above it; "+
			"median 40 ms. Fallback model: median 80 ms (2×), unlimited. Open-loop load: 100 req/s for %.1fs, 400 req/s for %.1fs (the storm), "+
			"100 req/s for %.1fs. Every peer falls back to the fallback model when its primary policy gives up (LiteLLM-style); "+
			"failsafehttp's retry honours Retry-After as its DelayFunc does. \"Back on primary\" is the time from the storm's end until every "+
			"100 ms bucket has ≥ 95%% of its calls served by the primary. Timeout 5s.",
			capacity, capacity/10, retryAfter.Seconds(), calm.Seconds(), storm.Seconds(), after.Seconds())}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	for _, name := range []string{"sturdy degrade (limit 190 req/s)", "sturdy degrade (Retry-After only)", "sturdy degrade (Retry-After only, no wait)", "sturdy degrade (defaults: learned)"} {
		s := res.Row(spec.Condition, name)
		if s == nil {
			continue
		}
		res.Checks = append(res.Checks,
			Check{Target: name + ": primary attempts ≤ 1.1× capacity", Got: xcap(s.Extra["primary"]), Met: s.Extra["primary"] <= 1.1},
			Check{Target: name + ": success ≥ 99%", Got: Pct(s.Success()), Met: s.Success() >= 0.99},
			Check{Target: name + ": back on primary within 2× Retry-After (2s)", Got: ms(s.Extra["recovery"]), Met: s.Extra["recovery"] <= 2*float64(retryAfter/time.Millisecond)})
	}
	res.Notes = append(res.Notes, "sturdy's \"limit\" row sets the primary tier's client-side limit a little under the provider's "+
		"(95%), as a user who knows the published rate limit would. The \"Retry-After only\" rows configure no limit: each 429 "+
		"with Retry-After: 1 then cools the whole primary tier for a second, so the primary serves about a quarter of its capacity "+
		"and the fallback takes the rest (safe, but more of the slower model than needed). In that configuration the call falls back at once: a "+
		"tier with a fallback behind it never waits for a server's Retry-After (MaxRetryAfterWait applies to the last tier only), so "+
		"the \"no wait\" row (MaxRetryAfterWait: -1) behaves the same. The \"Retry-After only\" rows turn learned capacity off "+
		"(ratelimit.LearnConfig{Off: true}), as sturdy behaved before it; the \"defaults\" row learns the primary's rate from its 429s "+
		"and successes (scenario 8 runs the same storm long enough for the learning to settle).")
	res.Plot = "scenario4.png"
	if o.PlotDir != "" {
		if err := TimeSeriesPlot(o.PlotDir+"/"+res.Plot, "Attempts reaching the primary (first repetition)", "attempts / s", samples, bucket.Seconds(), capacity); err != nil {
			return res, err
		}
	}
	return res, nil
}

// ---------------------------------------------------------------- 5

// lognormalMixQuantile is the q-quantile of a service time that is
// lognormal(median, sigma), times stall with probability p.
func lognormalMixQuantile(q float64, median time.Duration, sigma, p, stall float64) time.Duration {
	cdf := func(t float64) float64 {
		phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
		m := float64(median)
		return (1-p)*phi(math.Log(t/m)/sigma) + p*phi(math.Log(t/(stall*m))/sigma)
	}
	lo, hi := 1.0, float64(time.Minute)
	for range 200 {
		mid := math.Sqrt(lo * hi)
		if cdf(mid) < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Duration(hi)
}

// Hedging is scenario 5: a hedging sweep over utilization and delay.
func Hedging(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const (
		n, slots        = 10, 1
		sigma           = 0.2
		stallP, stallX  = 0.01, 10.0
		warmup, runTime = 300 * time.Millisecond, 1600 * time.Millisecond
	)
	median := 10 * time.Millisecond
	mean := float64(median) * math.Exp(sigma*sigma/2) * (1 - stallP + stallP*stallX)
	capacity := n * slots / (mean / float64(time.Second))
	var bcs []BackendConfig
	for i := range n {
		bcs = append(bcs, BackendConfig{Name: fmt.Sprintf("b%d", i), Slots: slots, Median: median, Sigma: sigma, StallProb: stallP, StallFactor: stallX})
	}
	utils := []float64{0.30, 0.60, 0.85}
	if o.Short {
		utils = []float64{0.60}
	}
	var specs []runSpec
	for _, u := range utils {
		specs = append(specs, runSpec{
			Condition: fmt.Sprintf("%.0f%%", 100*u),
			Backends:  bcs,
			Load:      Load{Phases: []Phase{{o.dur(runTime), u * capacity}}, Warmup: o.dur(warmup), Timeout: 5 * time.Second},
		})
	}
	rr := func(base *http.Transport, e *env) http.RoundTripper { return NewRoundRobin(base, e.URLs) }
	clients := []clientSpec{
		{Name: "no hedging (round-robin)", New: httpClient(rr)},
		{Name: "sturdy, no hedging (P2C)", New: sturdyClient()},
	}
	qs := []float64{0.90, 0.95, 0.99}
	var delays []string
	for _, q := range qs {
		d := lognormalMixQuantile(q, median, sigma, stallP, stallX)
		delays = append(delays, fmt.Sprintf("p%.0f = %s ms", 100*q, Ms(d)))
		clients = append(clients, clientSpec{Name: fmt.Sprintf("failsafe-go hedge, fixed p%.0f", 100*q), New: httpClient(func(base *http.Transport, e *env) http.RoundTripper {
			return failsafehttp.NewRoundTripper(rr(base, e), hedgepolicy.NewWithDelay[*http.Response](d))
		})})
	}
	clients = append(clients, clientSpec{Name: "failsafe-go hedge, quantile p95", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper {
		return failsafehttp.NewRoundTripper(rr(base, e), hedgepolicy.NewWithDelayQuantile[*http.Response](0.95, 1000, 20))
	})})
	for _, q := range qs {
		clients = append(clients, clientSpec{Name: fmt.Sprintf("sturdy adaptive hedge p%.0f", 100*q), New: sturdyClient(httpmw.WithHedge(hedge.Config{Quantile: q, BudgetWindow: time.Second}))})
	}
	clients = append(clients, clientSpec{Name: "sturdy adaptive hedge p95, no budget", New: sturdyClient(httpmw.WithHedge(hedge.Config{Quantile: 0.95, BudgetRatio: -1}))})
	if o.Short {
		clients = []clientSpec{clients[0], clients[3], clients[5], clients[7]}
	}
	rows, err := suite(ctx, o, 5, specs, clients, nil)
	res := &Result{ID: 5, Title: "Hedging sweep", Rows: rows,
		Setup: fmt.Sprintf("10 backends, lognormal service time with median 10 ms (σ = %.1f), 1 slot each, 1%% of requests stall %.0f× "+
			"(capacity %.0f req/s); open-loop load at 30/60/85%% of capacity for %.1fs (first %.1fs warm-up); timeout 5s. "+
			"Fixed delays are the service time's quantiles computed from its distribution (%s), the best a user could configure; "+
			"failsafe-go's quantile delay is NewWithDelayQuantile(0.95, 1000, 20); sturdy's is its adaptive delay at p90/p95/p99 "+
			"with its default 5%% hedge budget (and 1 hedge/s floor) counted over a 1s window instead of the default 10s, since a run lasts %.1fs "+
			"and a 10s window's floor alone would allow 10 hedges per run. One hedge per call everywhere; losers are cancelled, which frees the backend's slot.",
			sigma, stallX, capacity, o.dur(runTime).Seconds(), o.dur(warmup).Seconds(), joinComma(delays), o.dur(runTime).Seconds())}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	// The checks hold for each of sturdy's delays; p95 is the default.
	for _, q := range qs {
		name := fmt.Sprintf("sturdy adaptive hedge p%.0f", 100*q)
		label := name
		if q == 0.95 {
			label += " (default)"
		}
		for _, rs := range specs {
			base, s := res.Row(rs.Condition, "no hedging (round-robin)"), res.Row(rs.Condition, name)
			if base == nil || s == nil {
				continue
			}
			ratio := float64(base.P(99.9)) / float64(s.P(99.9))
			if rs.Condition == "85%" {
				res.Checks = append(res.Checks, Check{
					Target: "at 85%: " + label + " p99.9 no worse than no hedging",
					Got:    fmt.Sprintf("%s ms vs %s ms, extra load %+.1f%%", Ms(s.P(99.9)), Ms(base.P(99.9)), 100*s.ExtraLoad()),
					Met:    s.P(99.9) <= base.P(99.9),
				})
				continue
			}
			res.Checks = append(res.Checks,
				Check{Target: "at " + rs.Condition + ": " + label + " p99.9 ≥ 10× lower than no hedging, extra load ≤ 5%",
					Got: fmt.Sprintf("%s ms vs %s ms (%.1f× lower), extra load %+.1f%%", Ms(s.P(99.9)), Ms(base.P(99.9)), ratio, 100*s.ExtraLoad()),
					Met: ratio >= 10 && s.ExtraLoad() <= 0.05})
		}
	}
	// What any client achieved, for the honest line under the table.
	for _, rs := range specs {
		base := res.Row(rs.Condition, "no hedging (round-robin)")
		if base == nil || rs.Condition == "85%" {
			continue
		}
		var best, bestLow *Row
		for _, r := range res.Rows {
			if r.Condition != rs.Condition || r == base {
				continue
			}
			if best == nil || r.P(99.9) < best.P(99.9) {
				best = r
			}
			if r.ExtraLoad() <= 0.05 && (bestLow == nil || r.P(99.9) < bestLow.P(99.9)) {
				bestLow = r
			}
		}
		if best != nil && bestLow != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("At %s the lowest p99.9 of any client was %s ms (%s, %.1f× below no hedging, extra load %+.1f%%); "+
				"the lowest within 5%% extra load was %s ms (%s, %.1f× below).", rs.Condition,
				Ms(best.P(99.9)), best.Client, float64(base.P(99.9))/float64(best.P(99.9)), 100*best.ExtraLoad(),
				Ms(bestLow.P(99.9)), bestLow.Client, float64(base.P(99.9))/float64(bestLow.P(99.9))))
		}
	}
	res.Notes = append(res.Notes, "Why the 10× target is out of reach here: a hedged call cannot end before its hedge delay plus a service "+
		"time (≈ 2–3× the median, 25–30 ms), so a 10× cut needs no hedging's p99.9 above ~250–300 ms, while with 1% of requests "+
		"stalling 10× the median it is about 10× the median plus the queueing behind a stall. The Tail at Scale's 1,800 → 74 ms came "+
		"from stalls about 100× its median. The lines above give the best ratio any client reached.",
		"Hedging after p95 of recent latencies sends about 5% of calls a hedge, which is the whole default budget of 5%, so the budget "+
			"refuses, at random, some of the hedges that stalled calls need (compare the \"no budget\" row); a delay at p99 stays inside "+
			"the budget. At 85% compare the extra-load column: the budget holds sturdy to about 5%, while unbudgeted hedging (the \"no budget\" "+
			"row, failsafe-go's fixed and quantile delays) adds load when the pool has the least room for it.")
	res.Plot = "scenario5.png"
	if o.PlotDir != "" {
		if err := UtilPlot(o.PlotDir+"/"+res.Plot, "Hedging: p99.9 latency by utilization", specs, rows); err != nil {
			return res, err
		}
	}
	return res, nil
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
