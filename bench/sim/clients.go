package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// body is a small OpenAI-style chat request.
var body = []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 200) + `"}]}`)

// NewBase returns the plain HTTP transport under every client: keep-alive
// connections, enough of them per host for the simulated concurrency.
func NewBase() *http.Transport {
	return &http.Transport{
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
}

// HTTPCall returns a CallFunc that POSTs a chat request through rt. The
// request's host is a placeholder: every client under test routes it.
func HTTPCall(rt http.RoundTripper) CallFunc {
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm.invalid/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		served := resp.Header.Get("X-Backend")
		if err != nil {
			return served, err
		}
		if resp.StatusCode != http.StatusOK {
			return served, fmt.Errorf("status %d", resp.StatusCode)
		}
		return served, nil
	}
}

// route returns a clone of req aimed at base.
func route(req *http.Request, base *url.URL) *http.Request {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host = base.Scheme, base.Host
	r.Host = base.Host
	return r
}

func parseURLs(urls []string) []*url.URL {
	out := make([]*url.URL, len(urls))
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			panic(err)
		}
		out[i] = u
	}
	return out
}

// RoundRobin is the baseline a user writes: an atomic counter modulo n.
type RoundRobin struct {
	Next  http.RoundTripper
	bases []*url.URL
	n     atomic.Uint64
}

// NewRoundRobin returns a round-robin RoundTripper over urls.
func NewRoundRobin(next http.RoundTripper, urls []string) *RoundRobin {
	return &RoundRobin{Next: next, bases: parseURLs(urls)}
}

// RoundTrip implements http.RoundTripper.
func (t *RoundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	i := (t.n.Add(1) - 1) % uint64(len(t.bases))
	return t.Next.RoundTrip(route(req, t.bases[i]))
}

// LeastOutstanding sends each request to the backend with the fewest
// requests in flight, ties broken at random ("least connections").
type LeastOutstanding struct {
	Next  http.RoundTripper
	bases []*url.URL
	out   []atomic.Int64
}

// NewLeastOutstanding returns a least-outstanding RoundTripper over urls.
func NewLeastOutstanding(next http.RoundTripper, urls []string) *LeastOutstanding {
	return &LeastOutstanding{Next: next, bases: parseURLs(urls), out: make([]atomic.Int64, len(urls))}
}

// RoundTrip implements http.RoundTripper.
func (t *LeastOutstanding) RoundTrip(req *http.Request) (*http.Response, error) {
	n := len(t.bases)
	off := rand.IntN(n)
	best, bestN := 0, int64(1<<62)
	for k := range n {
		i := (off + k) % n
		if v := t.out[i].Load(); v < bestN {
			best, bestN = i, v
		}
	}
	t.out[best].Add(1)
	defer t.out[best].Add(-1)
	return t.Next.RoundTrip(route(req, t.bases[best]))
}

// retryable says whether a naive client retries a response or error.
func retryable(resp *http.Response, err error) bool {
	return err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// NaiveRetry retries a failed request on the next backend of a
// round-robin, up to Attempts attempts in all, with no backoff and no
// budget: what a client configured with "3 attempts" (2 retries) does.
type NaiveRetry struct {
	Next     http.RoundTripper
	Attempts int
}

// RoundTrip implements http.RoundTripper.
func (t *NaiveRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	var err error
	for a := range t.Attempts {
		r := req
		if a > 0 {
			if req.Context().Err() != nil {
				break
			}
			r = req.Clone(req.Context())
			if req.GetBody != nil {
				r.Body, _ = req.GetBody()
			}
		}
		resp, err = t.Next.RoundTrip(r)
		if !retryable(resp, err) || a == t.Attempts-1 {
			break
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	return resp, err
}

// BreakerRoundRobin is round-robin that skips backends whose failsafe-go
// circuit breaker is open: the per-endpoint breakers a careful failsafe-go
// user builds (failsafehttp's breaker policy is one breaker for all
// backends).
type BreakerRoundRobin struct {
	Next     http.RoundTripper
	bases    []*url.URL
	names    []string
	breakers []circuitbreaker.CircuitBreaker[*http.Response]
	n        atomic.Uint64

	mu     sync.Mutex
	opened map[string]time.Time
}

// NewBreakerRoundRobin returns a BreakerRoundRobin over urls, one breaker
// each: open at ≥ 50% failures over ≥ 20 calls in 10s (as sturdy's health
// default), for 30s.
func NewBreakerRoundRobin(next http.RoundTripper, names, urls []string) *BreakerRoundRobin {
	t := &BreakerRoundRobin{Next: next, bases: parseURLs(urls), names: names, opened: map[string]time.Time{}}
	for _, name := range names {
		t.breakers = append(t.breakers, circuitbreaker.NewBuilder[*http.Response]().
			HandleIf(func(r *http.Response, err error) bool { return retryable(r, err) }).
			WithFailureRateThreshold(0.5, 20, 10*time.Second).
			WithDelay(30*time.Second).
			OnOpen(func(circuitbreaker.StateChangedEvent) {
				t.mu.Lock()
				if _, ok := t.opened[name]; !ok {
					t.opened[name] = time.Now()
				}
				t.mu.Unlock()
			}).Build())
	}
	return t
}

// Opened returns when the breaker of name first opened.
func (t *BreakerRoundRobin) Opened(name string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.opened[name]
	return at, ok
}

// RoundTrip implements http.RoundTripper.
func (t *BreakerRoundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	n := uint64(len(t.bases))
	for range n {
		i := (t.n.Add(1) - 1) % n
		cb := t.breakers[i]
		if !cb.TryAcquirePermit() {
			continue
		}
		resp, err := t.Next.RoundTrip(route(req, t.bases[i]))
		if retryable(resp, err) {
			cb.RecordFailure()
		} else {
			cb.RecordSuccess()
		}
		return resp, err
	}
	return nil, circuitbreaker.ErrOpen
}
