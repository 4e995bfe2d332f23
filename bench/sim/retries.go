package sim

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go/failsafehttp"

	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/httpmw"
)

// retryClients are the clients of scenarios 6 and 7: a naive 3-attempt
// retry, failsafe-go's retry policy (3 attempts, no budget), sturdy at its
// defaults (learning budget) and sturdy with the flat budget it had
// before (10% of calls + 3/s).
func retryClients() []clientSpec {
	return []clientSpec{
		{Name: "round-robin, 3 attempts", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper {
			return &NaiveRetry{Next: NewRoundRobin(base, e.URLs), Attempts: 3}
		})},
		{Name: "failsafe-go retry, 3 attempts", New: httpClient(func(base *http.Transport, e *env) http.RoundTripper {
			return failsafehttp.NewRoundTripper(NewRoundRobin(base, e.URLs), failsafehttp.NewRetryPolicyBuilder().WithMaxAttempts(3).Build())
		})},
		{Name: "sturdy (defaults: learning budget)", New: sturdyClient()},
		{Name: "sturdy (flat budget 10% + 3/s)", New: sturdyClient(httpmw.WithFailover(failover.Config{BudgetRatio: 0.1}))},
	}
}

// retryRun is the setting of scenarios 6 and 7: five backends at about 9%
// of their capacity, every one failing a share failProb of its calls with
// a 503 (no Retry-After) from the start.
func retryRun(o Options, condition string, failProb float64) (runSpec, string) {
	const sigma, rate = 0.5, 180.0
	mean := 20 * time.Millisecond
	var bcs []BackendConfig
	for i := range 5 {
		bcs = append(bcs, BackendConfig{Name: fmt.Sprintf("b%d", i), Slots: 8, Median: MeanToMedian(mean, sigma), Sigma: sigma, FailStatus: http.StatusServiceUnavailable})
	}
	total := o.dur(6 * time.Second)
	spec := runSpec{
		Condition: condition,
		Backends:  bcs,
		Load:      Load{Phases: []Phase{{total, rate}}, Timeout: 2 * time.Second},
		Events: func(ctx context.Context, e *env) {
			for _, b := range e.Backends {
				b.SetFailProb(failProb)
			}
		},
	}
	capacity := 5 * 8 / mean.Seconds()
	setup := fmt.Sprintf("5 backends, mean 20 ms (lognormal, σ = 0.5), 8 slots each (capacity about %.0f req/s); %.0f req/s open-loop "+
		"(%.0f%% of capacity) for %.0fs; no active health probes. A call succeeds if it answers 200 within 2s. Attempts per call are the "+
		"backends' attempts over the calls.", capacity, rate, 100*rate/capacity, total.Seconds())
	return spec, setup
}

func attemptsPerCall(r *Row) float64 { return 1 + r.ExtraLoad() }

// Random503s is scenario 6: every backend answers 503 to one request in
// three, at random, at low load. Retries almost always cure such failures,
// so a budget that stops them loses calls for nothing.
func Random503s(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	spec, setup := retryRun(o, "1 in 3 fail", 1.0/3)
	clients := retryClients()
	if o.Short {
		clients = []clientSpec{clients[0], clients[2]}
	}
	rows, err := suite(ctx, o, 6, []runSpec{spec}, clients, nil)
	res := &Result{ID: 6, Title: "Random 503s on every endpoint", Rows: rows,
		Setup: setup + " Every backend answers 503 to a third of its requests, at random, for the whole run. " +
			"A naive client with 3 attempts succeeds with probability 1 − (1/3)³ ≈ 96.3% at 1 + 1/3 + 1/9 ≈ 1.44 attempts per call."}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	if s := res.Row(spec.Condition, "sturdy (defaults: learning budget)"); s != nil {
		res.Checks = append(res.Checks,
			Check{Target: "sturdy defaults success ≥ 95%", Got: Pct(s.Success()), Met: s.Success() >= 0.95},
			Check{Target: "sturdy defaults ≤ 1.6 attempts per call", Got: fmt.Sprintf("%.2f", attemptsPerCall(s)), Met: attemptsPerCall(s) <= 1.6})
	}
	return res, nil
}

// TotalOutage is scenario 7: every backend answers 503 to every request.
// No retry can help; the budget must keep the load near one attempt per
// call (the SRE book's bound).
func TotalOutage(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	spec, setup := retryRun(o, "outage", 1)
	clients := retryClients()
	if o.Short {
		clients = []clientSpec{clients[0], clients[2]}
	}
	rows, err := suite(ctx, o, 7, []runSpec{spec}, clients, nil)
	res := &Result{ID: 7, Title: "Total outage, no probes", Rows: rows, Outage: true,
		Setup: setup + " Every backend answers 503 to every request for the whole run."}
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	if s := res.Row(spec.Condition, "sturdy (defaults: learning budget)"); s != nil {
		res.Checks = append(res.Checks,
			Check{Target: "sturdy defaults ≤ 1.1 attempts per call", Got: fmt.Sprintf("%.3f", attemptsPerCall(s)), Met: attemptsPerCall(s) <= 1.1})
	}
	return res, nil
}
