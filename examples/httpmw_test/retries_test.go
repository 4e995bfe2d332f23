package httpmw_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
	"github.com/sturdyai/sturdy/sturdytest"
)

// countingRT counts the calls the client makes to the Transport: one per
// client attempt.
type countingRT struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// The must-show: openai-go with its default retries (2) left on
// makes no more requests per call than sturdy's own cap (3 attempts), for
// every kind of failure, because every failed call is answered with a
// final response carrying X-Should-Retry: false, which openai-go v3
// honours before its status rules (internal/requestconfig shouldRetry);
// without it, openai-go retries any transport error and 408/409/429/5xx.
func TestOpenAIGoDefaultRetriesDoNotStack(t *testing.T) {
	const sturdyCap = 3 // failover.Config's default MaxAttempts
	type kind struct {
		name   string
		setup  func(t *testing.T) (ep httpmw.Endpoint, served func() int64, opts []httpmw.Option)
		status int
		class  sturdy.Class
	}
	llm := func(cfg sturdytest.Config) func(t *testing.T) (httpmw.Endpoint, func() int64, []httpmw.Option) {
		return func(t *testing.T) (httpmw.Endpoint, func() int64, []httpmw.Option) {
			s := startLLM(t, cfg)
			return endpoint(s, "k"), func() int64 { return s.Stats().Requests }, nil
		}
	}
	kinds := []kind{
		{"5xx", llm(sturdytest.Config{Name: "s", Down: sturdytest.Down503}), 503, sturdy.Unavailable},
		{"429", llm(sturdytest.Config{Name: "s", RateLimit: sturdytest.RateLimit{Always: true, NoRetryAfter: true}}), 429, sturdy.Overloaded},
		{"reset", llm(sturdytest.Config{Name: "s", Down: sturdytest.DownReset}), 502, sturdy.Unavailable},
		{"timeout", func(t *testing.T) (httpmw.Endpoint, func() int64, []httpmw.Option) {
			s := startLLM(t, sturdytest.Config{Name: "s", Latency: sturdytest.Latency{Fixed: 10 * time.Second}})
			return endpoint(s, "k"), func() int64 { return s.Stats().Requests },
				[]httpmw.Option{httpmw.WithResponseTimeout(50 * time.Millisecond)}
		}, 504, sturdy.Timeout},
		{"refused", func(t *testing.T) (httpmw.Endpoint, func() int64, []httpmw.Option) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := l.Addr().String()
			require.NoError(t, l.Close())
			return httpmw.URL("s", "http://"+addr, nil), func() int64 { return -1 }, nil // dials are counted
		}, 502, sturdy.Unavailable},
		{"local limit", func(t *testing.T) (httpmw.Endpoint, func() int64, []httpmw.Option) {
			s := startLLM(t, sturdytest.Config{Name: "s"})
			return endpoint(s, "k"), func() int64 { return s.Stats().Requests }, nil
		}, 429, sturdy.Overloaded},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ep, served, opts := k.setup(t)
			var dials atomic.Int64
			d := &net.Dialer{}
			base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return d.DialContext(ctx, network, addr)
			}}
			t.Cleanup(base.CloseIdleConnections)
			tier := degrade.Tier{Name: "t"}
			if k.name == "local limit" {
				// One call a minute: the first call spends it, the next
				// ones are refused locally, without a request.
				tier.Limit = ratelimit.Limit{RequestsPerSecond: 1.0 / 60, Burst: 1}
			}
			tr, err := httpmw.NewTransport(base, append([]httpmw.Option{
				httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
				httpmw.WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: -1}),
				httpmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
				httpmw.WithTier(tier, ep),
			}, opts...)...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tr.Close() })
			rt := &countingRT{rt: tr}
			c := openai.NewClient( // openai-go's default retries: 2
				option.WithHTTPClient(&http.Client{Transport: rt}),
				option.WithBaseURL(clientBase),
				option.WithAPIKey("client-key-never-sent"),
			)
			ctx := context.Background()
			if k.name == "local limit" {
				_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
					Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
				require.NoError(t, err, "the first call spends the limit")
				rt.n.Store(0)
			}
			before, dialsBefore := served(), dials.Load()
			const calls = 3
			for range calls {
				start := time.Now()
				var resp *http.Response
				_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
					Model:    "gpt-4o",
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
				}, option.WithResponseInto(&resp))
				apiErr, ok := errors.AsType[*openai.Error](err)
				require.True(t, ok, "an API error, not a transport error: %v", err)
				assert.Equal(t, k.status, apiErr.StatusCode)
				assert.Less(t, time.Since(start), 400*time.Millisecond, "no client backoff (0.5 s) was waited")
				se := httpmw.CallError(apiErr.Response)
				require.NotNil(t, se, "the attempt list survives")
				assert.Equal(t, k.class, se.Class)
				assert.LessOrEqual(t, len(se.Attempts), sturdyCap)
				if k.status != 429 {
					// A 429's wait hint (x-ratelimit-reset-*) pauses the
					// tier: the next calls are refused locally.
					assert.Len(t, se.Attempts, sturdyCap, "sturdy's own cap was spent")
				}
				assert.Equal(t, "false", apiErr.Response.Header.Get(httpmw.HeaderShouldRetry))
			}
			assert.EqualValues(t, calls, rt.n.Load(), "openai-go called the Transport once per call: no retry of its own")
			n := served() - before
			if k.name == "refused" {
				n = dials.Load() - dialsBefore
			}
			per := float64(n) / calls
			t.Logf("%s: %.1f requests per call (sturdy's cap %d)", k.name, per, sturdyCap)
			assert.LessOrEqual(t, per, float64(sturdyCap))
			if k.name == "local limit" {
				assert.Zero(t, n, "a local refusal sends nothing")
			} else {
				assert.Positive(t, n)
			}
		})
	}
}
