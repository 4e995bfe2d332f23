// Package sim is the load-simulation harness of sturdy's benchmarks: fake
// model servers on loopback, an open-loop load generator and the scenarios
// of BENCHMARKS.md, each comparing sturdy with the peers a user would pick
// instead.
//
// A Backend is a queue in front of a fixed number of concurrency slots; each
// request holds a slot for a lognormal service time, so load raises latency
// the way it does on a GPU server with a fixed batch size. It can answer 429
// with Retry-After above a request rate, fail with a probability, stall
// (service time × a factor) with a probability, or be pinned to a fixed
// latency. A request whose client goes away (a lost hedge, a timeout) leaves
// the queue or frees its slot at once, as vLLM aborts a disconnected request.
package sim

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BackendConfig describes one fake model server.
type BackendConfig struct {
	Name  string
	Slots int // concurrent requests served; more wait in a queue
	// Median and Sigma define the lognormal service time.
	Median time.Duration
	Sigma  float64
	// RPS, if > 0, is the server's rate limit: requests above it (a token
	// bucket with Burst) are answered 429 with Retry-After at once.
	RPS        float64
	Burst      float64
	RetryAfter time.Duration
	// StallProb is the probability that a request takes StallFactor × its
	// service time.
	StallProb   float64
	StallFactor float64
	// FailStatus is the status of a failed request (SetFailProb); zero
	// means 500.
	FailStatus int
	// ReportQueue is a queue the backend reports, on top of its own
	// requests waiting for a slot, in the ORCA load report it sends when a
	// request asks for one (Endpoint-Load-Metrics-Format: TEXT or JSON,
	// as vLLM does): other clients' requests, which this client does not
	// see and which do not slow it down (yet).
	ReportQueue float64
	// Quota, if set, names a rate limit (RPS, Burst) that every backend of
	// the run with the same Quota shares, as replicas behind one provider
	// key do; the first such backend's RPS and Burst define it.
	Quota string
	// RateHeaders makes every answer carry OpenAI-style rate-limit headers
	// for the requests bucket: x-ratelimit-limit-requests (the burst),
	// -remaining-requests (whole tokens left) and -reset-requests (the
	// time until the bucket is full again, as a Go duration).
	RateHeaders bool
	Seed        uint64
}

// MeanToMedian returns the median of a lognormal with the given mean.
func MeanToMedian(mean time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(mean) / math.Exp(sigma*sigma/2))
}

// Backend is a running fake model server.
type Backend struct {
	cfg     BackendConfig
	URL     string
	Addr    string
	srv     *http.Server
	stop    func()
	ln      net.Listener
	slots   chan struct{}
	waiting atomic.Int64 // requests waiting for a slot

	failProb atomic.Uint64 // math.Float64bits
	pinned   atomic.Int64  // a fixed service time, 0 = none

	mu     sync.Mutex
	rng    *rand.Rand
	bucket *bucket // the rate limit, own or shared (Quota); nil: none

	Series *Series // arrivals per bucket, from Start

	Attempts atomic.Int64 // requests that arrived
	Limited  atomic.Int64 // answered 429
	Failed   atomic.Int64 // answered 500
	Served   atomic.Int64 // answered 200
}

// NewBackend starts a backend on 127.0.0.1.
func NewBackend(cfg BackendConfig, series *Series) (*Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := newModel(cfg, series)
	b.URL, b.Addr, b.ln = "http://"+ln.Addr().String(), ln.Addr().String(), ln
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// newModel returns a backend without a server, for other transports.
func newModel(cfg BackendConfig, series *Series) *Backend {
	if cfg.Slots <= 0 {
		cfg.Slots = 8
	}
	if cfg.StallFactor == 0 {
		cfg.StallFactor = 10
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Burst == 0 {
		cfg.Burst = math.Max(1, cfg.RPS/10)
	}
	b := &Backend{
		cfg:    cfg,
		slots:  make(chan struct{}, cfg.Slots),
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		Series: series,
	}
	if cfg.RPS > 0 {
		b.bucket = newBucket(cfg.RPS, cfg.Burst)
	}
	return b
}

// bucket is a server-side token bucket, shared by the backends of one
// Quota.
type bucket struct {
	mu       sync.Mutex
	rps      float64
	burst    float64
	tokens   float64
	lastFill time.Time
}

func newBucket(rps, burst float64) *bucket {
	return &bucket{rps: rps, burst: burst, tokens: burst, lastFill: time.Now()}
}

// take refills the bucket to now and takes a token if there is one.
func (q *bucket) take(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tokens = math.Min(q.burst, q.tokens+now.Sub(q.lastFill).Seconds()*q.rps)
	q.lastFill = now
	if q.tokens < 1 {
		return false
	}
	q.tokens--
	return true
}

// state returns the whole tokens left at now and the time until the
// bucket is full.
func (q *bucket) state(now time.Time) (remaining int, reset time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := math.Min(q.burst, q.tokens+now.Sub(q.lastFill).Seconds()*q.rps)
	return int(t), time.Duration((q.burst - t) / q.rps * float64(time.Second))
}

// Name returns the backend's name.
func (b *Backend) Name() string { return b.cfg.Name }

// SetFailProb makes a share p of requests answer 500.
func (b *Backend) SetFailProb(p float64) { b.failProb.Store(math.Float64bits(p)) }

// Pin makes every request take d (0 unpins).
func (b *Backend) Pin(d time.Duration) { b.pinned.Store(int64(d)) }

// Close stops the backend and drops its connections.
func (b *Backend) Close() {
	if b.srv != nil {
		_ = b.srv.Close()
	}
	if b.stop != nil {
		b.stop()
	}
}

// decide draws what happens to one request.
func (b *Backend) decide(now time.Time) (limited, fail bool, service time.Duration) {
	if b.bucket != nil && !b.bucket.take(now) {
		return true, false, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := math.Float64frombits(b.failProb.Load()); p > 0 && b.rng.Float64() < p {
		return false, true, 0
	}
	if d := b.pinned.Load(); d > 0 {
		return false, false, time.Duration(d)
	}
	s := float64(b.cfg.Median) * math.Exp(b.cfg.Sigma*b.rng.NormFloat64())
	if b.cfg.StallProb > 0 && b.rng.Float64() < b.cfg.StallProb {
		s *= b.cfg.StallFactor
	}
	return false, false, time.Duration(s)
}

// Outcome of one request at a backend.
type reply int

const (
	replyOK reply = iota
	replyLimited
	replyFailed
	replyGone // the client went away
)

// handle runs one request through the backend's model.
func (b *Backend) handle(ctx context.Context) reply {
	now := time.Now()
	b.Attempts.Add(1)
	b.Series.Add(now, b.cfg.Name, 1)
	limited, fail, service := b.decide(now)
	switch {
	case limited:
		b.Limited.Add(1)
		b.Series.Add(now, b.cfg.Name+"/429", 1)
		return replyLimited
	case fail:
		b.Failed.Add(1)
		b.Series.Add(now, b.cfg.Name+"/500", 1)
		return replyFailed
	}
	if err := b.serve(ctx, service); err != nil {
		return replyGone
	}
	b.Served.Add(1)
	return replyOK
}

// ServeHTTP is one inference request.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-Backend", b.cfg.Name)
	reply := b.handle(r.Context())
	b.reportLoad(w.Header(), r.Header.Get("Endpoint-Load-Metrics-Format"))
	if b.cfg.RateHeaders && b.bucket != nil {
		rem, reset := b.bucket.state(time.Now())
		h := w.Header()
		h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(int(b.bucket.burst)))
		h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(rem))
		h.Set("X-Ratelimit-Reset-Requests", reset.String())
	}
	switch reply {
	case replyLimited:
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(b.cfg.RetryAfter.Seconds()))))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"type":"rate_limit_exceeded"}}`)
	case replyFailed:
		w.WriteHeader(cmp.Or(b.cfg.FailStatus, http.StatusInternalServerError))
		_, _ = io.WriteString(w, `{"error":{"type":"server_error"}}`)
	case replyOK:
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"backend":%q}`, b.cfg.Name)
	}
}

// reportLoad writes the load report vLLM sends (its KV-cache use, here
// the share of slots in use, and its requests waiting) in the format the
// request asked for, if any.
func (b *Backend) reportLoad(h http.Header, format string) {
	kv := float64(len(b.slots)) / float64(cap(b.slots))
	q := float64(b.waiting.Load()) + b.cfg.ReportQueue
	switch strings.ToUpper(format) {
	case "TEXT":
		h.Set("Endpoint-Load-Metrics", fmt.Sprintf("TEXT named_metrics.kv_cache_usage_perc=%g, named_metrics.num_requests_waiting=%g", kv, q))
	case "JSON":
		h.Set("Endpoint-Load-Metrics", fmt.Sprintf(`JSON {"named_metrics": {"kv_cache_usage_perc": %g, "num_requests_waiting": %g}}`, kv, q))
	}
}

// serve waits for a slot and holds it for d, or gives up when ctx ends.
func (b *Backend) serve(ctx context.Context, d time.Duration) error {
	b.waiting.Add(1)
	select {
	case b.slots <- struct{}{}:
		b.waiting.Add(-1)
	case <-ctx.Done():
		b.waiting.Add(-1)
		return ctx.Err()
	}
	defer func() { <-b.slots }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Series counts events per time bucket and key, from a start time.
type Series struct {
	Start  time.Time
	Bucket time.Duration
	mu     sync.Mutex
	counts map[string][]float64
}

// NewSeries returns a Series starting now.
func NewSeries(start time.Time, bucket time.Duration) *Series {
	return &Series{Start: start, Bucket: bucket, counts: map[string][]float64{}}
}

// Add adds v to key's bucket at t. A nil Series does nothing.
func (s *Series) Add(t time.Time, key string, v float64) {
	if s == nil || t.Before(s.Start) {
		return
	}
	i := int(t.Sub(s.Start) / s.Bucket)
	if i > 100000 {
		return
	}
	s.mu.Lock()
	c := s.counts[key]
	for len(c) <= i {
		c = append(c, 0)
	}
	c[i] += v
	s.counts[key] = c
	s.mu.Unlock()
}

// Get returns a copy of key's buckets, n long.
func (s *Series) Get(key string, n int) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]float64, n)
	copy(out, s.counts[key])
	return out
}
