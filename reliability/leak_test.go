package reliability

import (
	"google.golang.org/grpc/codes"

	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
	"github.com/sturdyai/sturdy/sturdytest"
)

// goroutinesSettle waits (up to 3s) for the goroutine count to fall to
// base and returns the last count.
func goroutinesSettle(base int) int {
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPThousandsOfCallsLeaveNothingBehind runs 3000 calls, half of them
// streams, through a Transport that hedges after 4ms and fails over, over
// three servers: one answers every 4th call 503, one every 4th call 429,
// one is slow now and then. Afterwards goroutines return to their
// baseline, and once the client closes its idle connections every server
// connection is closed: the connections of retried 503/429 answers were
// drained and reused or closed, and those of losing hedges (cancelled, so
// closed rather than drained: known point 2) were closed, not leaked.
func TestHTTPThousandsOfCallsLeaveNothingBehind(t *testing.T) {
	leaks := leakCheck(t)
	e503 := &rig.EveryNth{N: 4, Status: http.StatusServiceUnavailable}
	e429 := &rig.EveryNth{N: 4, Status: http.StatusTooManyRequests}
	specs := []struct {
		name string
		cfg  sturdytest.Config
		wrap func(http.Handler) http.Handler
	}{
		{"a", sturdytest.Config{}, e503.Wrap},
		{"b", sturdytest.Config{}, e429.Wrap},
		{"c", sturdytest.Config{Latency: sturdytest.Latency{Median: time.Millisecond, Sigma: 1.5, Max: 50 * time.Millisecond}}, nil},
	}
	var llms []*rig.LLM
	tier := degrade.Tier{Name: "tier0", Model: "big"}
	var eps []httpmw.Endpoint
	for _, s := range specs {
		cfg := s.cfg
		cfg.Name, cfg.Seed = s.name, 7
		var wraps []func(http.Handler) http.Handler
		if s.wrap != nil {
			wraps = append(wraps, s.wrap)
		}
		l, err := rig.StartLLM(cfg, wraps...)
		if err != nil {
			t.Fatal(err)
		}
		llms = append(llms, l)
		eps = append(eps, httpmw.URL(s.name, l.URL(), nil))
	}
	base := &http.Transport{MaxIdleConnsPerHost: 8}
	count := &rig.CountingTransport{Base: base}
	baseline := runtime.NumGoroutine()
	tr, err := httpmw.NewTransport(count, httpmw.WithTier(tier, eps...),
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin}),
		httpmw.WithFailover(failover.Config{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxRetryAfterWait: -1, BudgetRatio: 0.5}),
		httpmw.WithHedge(hedge.Config{Delay: 4 * time.Millisecond, BudgetRatio: 0.3}),
		httpmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	var ty tally
	const calls, workers = 3000, 8
	start := time.Now()
	load(calls, workers, func(i int) { doHTTP(t, client, &ty, 5*time.Second, "big", i%2 == 1) })
	elapsed := time.Since(start)

	var opened, openBefore int64
	for _, l := range llms {
		opened += l.Conns.Opened()
		openBefore += l.Conns.Open()
	}
	// The pool holds at most MaxIdleConnsPerHost idle connections a host;
	// more open ones would be leaked (unread, unclosed) bodies.
	if openBefore > int64(8*len(llms)) {
		t.Errorf("%d server connections open after the run; the pool keeps at most %d", openBefore, 8*len(llms))
	}
	_ = tr.Close()
	tr.CloseIdleConnections()
	open := settle(func() int64 {
		var n int64
		for _, l := range llms {
			n += l.Conns.Open()
		}
		return n
	})
	if open != 0 {
		t.Errorf("%d server connections still open after the client closed its idle ones", open)
	}
	after := goroutinesSettle(baseline)
	if after > baseline {
		t.Errorf("goroutines: %d before the transport, %d after it closed", baseline, after)
	}
	for _, l := range llms {
		l.Close()
	}
	fig := figure{Order: 200, Fault: "3000 calls with 503s, 429s, slow answers, hedges and failovers", Adapter: "httpmw",
		Does:     "drains (≤ 64 KiB) and closes every discarded response; cancels losing hedges (their connections close); returns goroutines and connections to the baseline",
		Attempts: count.Path("/v1/chat/completions"), Deadline: 5 * time.Second, OpenConn: open}
	ty.fill(&fig)
	fig.Note = fmt.Sprintf("%v; %d answers 503 and %d answers 429 retried; %d connections opened for %d requests; %d open before the idle close (pool ≤ %d); goroutines %d → %d",
		elapsed.Round(time.Millisecond), e503.Sent.Load(), e429.Sent.Load(), opened, fig.Attempts, openBefore, 8*len(llms), baseline, after)
	if fig.OK != fig.Calls {
		t.Errorf("%d of %d calls failed", fig.Calls-fig.OK, fig.Calls)
	}
	fig.Leaked = leaks()
	record(t, fig)
}

// TestRetriedErrorResponsesKeepTheirConnection sends calls one after
// another to an endpoint that answers every call 503 (then 429) with a
// 1 KiB body, failing over to a healthy one. Each discarded error response
// must be drained and closed so that its connection goes back to the pool:
// the failing server sees one connection for all of them.
func TestRetriedErrorResponsesKeepTheirConnection(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			leaks := leakCheck(t)
			inject := &rig.EveryNth{N: 1, Status: status}
			bad, err := rig.StartLLM(sturdytest.Config{Name: "bad"}, inject.Wrap)
			if err != nil {
				t.Fatal(err)
			}
			good, err := rig.StartLLM(sturdytest.Config{Name: "good"})
			if err != nil {
				t.Fatal(err)
			}
			base := &http.Transport{}
			tr, err := httpmw.NewTransport(base, httpmw.WithTier(degrade.Tier{},
				httpmw.URL("bad", bad.URL(), nil), httpmw.URL("good", good.URL(), nil)),
				httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin}),
				httpmw.WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: -1}),
				httpmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
				// The subject is the error answers' connections: keep
				// sending to the endpoint that answers 429 rather than
				// pacing it at a learned rate.
				httpmw.WithLimiter(ratelimit.Config{Learn: ratelimit.LearnConfig{Off: true}}))
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: tr}
			var ty tally
			const calls = 200
			for i := range calls {
				doHTTP(t, client, &ty, 2*time.Second, "big", i%2 == 1)
			}
			badReqs := inject.Sent.Load()
			if badReqs < calls/3 {
				t.Fatalf("the failing server answered only %d calls", badReqs)
			}
			if n := bad.Conns.Opened(); n != 1 {
				t.Errorf("the failing server saw %d connections for %d error answers; want 1 (drained and reused)", n, badReqs)
			}
			_ = tr.Close()
			tr.CloseIdleConnections()
			open := settle(func() int64 { return bad.Conns.Open() + good.Conns.Open() })
			bad.Close()
			good.Close()
			fig := figure{Order: 210, Fault: fmt.Sprintf("retried %d answers with a 1 KiB body", status), Adapter: "httpmw",
				Does:     "reads the error body into memory (≤ 64 KiB), closes it and retries elsewhere; the connection goes back to the pool",
				Attempts: int64(calls) + badReqs, OpenConn: open,
				Note: fmt.Sprintf("%d error answers over %d connection(s)", badReqs, bad.Conns.Opened())}
			ty.fill(&fig)
			if fig.OK != calls {
				t.Errorf("%d calls failed", calls-fig.OK)
			}
			fig.Leaked = leaks()
			record(t, fig)
		})
	}
}

// TestGRPCThousandsOfCallsLeaveNothingBehind runs 2000 unary calls through
// a grpcmw.Client that hedges after 2ms and fails over, over three servers:
// one always UNAVAILABLE, one slow (3ms), one fast. Once the client is
// closed, goroutines are back to their baseline and every server
// connection is closed.
func TestGRPCThousandsOfCallsLeaveNothingBehind(t *testing.T) {
	leaks := leakCheck(t)
	baseline := runtime.NumGoroutine()
	r := newGRPCRig(t, [][]string{{"a", "b", "c"}}, []string{"big"},
		grpcmw.WithFailover(failover.Config{MaxAttempts: 3, BaseBackoff: time.Millisecond, BudgetRatio: 0.5}),
		grpcmw.WithHedge(hedge.Config{Delay: 2 * time.Millisecond, BudgetRatio: 0.3}),
		grpcmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
		grpcmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin}))
	r.servers["a"].Set(0, codes.Unavailable)
	r.servers["b"].Set(3*time.Millisecond, codes.OK)
	var ty tally
	start := time.Now()
	load(2000, 8, func(i int) { doGRPC(t, r.stub, &ty, 5*time.Second, false) })
	elapsed := time.Since(start)
	var opened int64
	for _, s := range r.servers {
		opened += s.Conns.Opened()
	}
	fig := figure{Order: 205, Fault: "2000 calls with UNAVAILABLE, slow answers, hedges and failovers", Adapter: "grpcmw",
		Does:     "cancels losing hedges, releases every attempt; Close returns goroutines and connections to the baseline",
		Attempts: r.count.N(), Deadline: 5 * time.Second}
	ty.fill(&fig)
	if fig.OK != fig.Calls {
		t.Errorf("%d of %d calls failed", fig.Calls-fig.OK, fig.Calls)
	}
	fig.OpenConn = r.close()
	if fig.OpenConn != 0 {
		t.Errorf("%d server connections still open after Close", fig.OpenConn)
	}
	after := goroutinesSettle(baseline)
	if after > baseline {
		t.Errorf("goroutines: %d before the client, %d after it closed", baseline, after)
	}
	fig.Note = fmt.Sprintf("%v; %d connections (through toxiproxy, no toxic) for %d attempts; goroutines %d → %d",
		elapsed.Round(time.Millisecond), opened, fig.Attempts, baseline, after)
	fig.Leaked = leaks()
	record(t, fig)
}
