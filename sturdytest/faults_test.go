package sturdytest

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateLimitAlways(t *testing.T) {
	s, c := start(t, Config{Name: "p", RateLimit: RateLimit{Always: true, RetryAfter: 1500 * time.Millisecond}})
	resp, body := do(t, c, s.URL(), chatBody("m", false))
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	assert.Equal(t, "1500", resp.Header.Get("retry-after-ms"))
	assert.Equal(t, "0", resp.Header.Get("x-ratelimit-remaining-requests"))
	assert.Equal(t, "1.5s", resp.Header.Get("x-ratelimit-reset-requests"))
	assert.NotEmpty(t, resp.Header.Get("x-ratelimit-limit-requests"))
	e := decodeError(t, body)
	assert.Equal(t, "requests", e.Error.Type)
	assert.Equal(t, "rate_limit_exceeded", *e.Error.Code)

	s.SetRateLimit(RateLimit{Always: true, NoRetryAfter: true})
	resp, _ = do(t, c, s.URL(), chatBody("m", false))
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Retry-After"))
	assert.Empty(t, resp.Header.Get("retry-after-ms"))

	s.SetRateLimit(RateLimit{})
	resp, _ = do(t, c, s.URL(), chatBody("m", false))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// statuses runs n sequential chat completions through the handler.
func statuses(s *Server, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = serve(s, chatBody("m", false)).Code
	}
	return out
}

func count(codes []int, code int) int {
	n := 0
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

func TestErrorRateSeeded(t *testing.T) {
	const n = 1000
	a := statuses(NewLLM(Config{Seed: 7, ErrorRate: 0.1}), n)
	b := statuses(NewLLM(Config{Seed: 7, ErrorRate: 0.1}), n)
	assert.Equal(t, a, b, "same seed, same answers")
	fails := count(a, http.StatusInternalServerError)
	assert.Equal(t, n, fails+count(a, http.StatusOK))
	assert.InDelta(t, 0.1, float64(fails)/n, 0.03)

	d := statuses(NewLLM(Config{Seed: 8, ErrorRate: 0.1}), n)
	assert.NotEqual(t, a, d, "another seed, other answers")
}

func TestRateLimitShareSeeded(t *testing.T) {
	const n = 1000
	s := NewLLM(Config{Seed: 3, RateLimit: RateLimit{Share: 0.25}, ErrorRate: 0.1})
	a := statuses(s, n)
	assert.InDelta(t, 0.25, float64(count(a, 429))/n, 0.04)
	// Limited requests draw no error: about 10% of the 75% others fail.
	assert.InDelta(t, 0.075, float64(count(a, 500))/n, 0.03)
	assert.Equal(t, a, statuses(NewLLM(Config{Seed: 3, RateLimit: RateLimit{Share: 0.25}, ErrorRate: 0.1}), n))
	st := s.Stats()
	assert.Equal(t, int64(n), st.Requests)
	assert.Equal(t, int64(count(a, 429)), st.ByStatus[429])
	assert.Equal(t, int64(n), st.ByModel["m"])
}

func TestRateLimitCapacity(t *testing.T) {
	s := NewLLM(Config{RateLimit: RateLimit{Capacity: 10, BucketSize: 2}})
	var codes []int
	var last *http.Response
	for range 6 {
		rec := serve(s, chatBody("m", false))
		codes = append(codes, rec.Code)
		last = rec.Result()
	}
	assert.Equal(t, []int{200, 200, 429, 429, 429, 429}, codes)
	assert.Equal(t, "10", last.Header.Get("x-ratelimit-limit-requests"))
	assert.Equal(t, "1", last.Header.Get("Retry-After"))
	ms, err := strconv.Atoi(last.Header.Get("retry-after-ms"))
	require.NoError(t, err)
	assert.True(t, ms > 0 && ms <= 100, "retry-after-ms %d: time until the next token", ms)

	time.Sleep(time.Duration(ms+5) * time.Millisecond)
	assert.Equal(t, http.StatusOK, serve(s, chatBody("m", false)).Code)

	// Changing the capacity refills the bucket.
	s.SetRateLimit(RateLimit{Capacity: 1, BucketSize: 5})
	assert.Equal(t, 5, count(statuses(s, 6), 200))

	assert.Equal(t, 20.0, RateLimit{Capacity: 200}.bucketSize(), "default: 100 ms of capacity")
	assert.Equal(t, 1.0, RateLimit{Capacity: 5}.bucketSize())
}

func TestRateLimitBursts(t *testing.T) {
	s := NewLLM(Config{RateLimit: RateLimit{BurstPeriod: time.Hour, BurstLength: 30 * time.Minute}})
	rec := serve(s, chatBody("m", false))
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 1800, ra, 2, "until the burst ends")

	s.SetRateLimit(RateLimit{BurstPeriod: time.Hour, BurstLength: 0})
	assert.Equal(t, http.StatusOK, serve(s, chatBody("m", false)).Code)
}

func TestDown(t *testing.T) {
	s, c := start(t, Config{})
	health := func() int {
		resp, err := c.Get(s.URL() + "/health")
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, health())

	s.SetDown(Down503)
	assert.Equal(t, http.StatusServiceUnavailable, health())
	resp, body := do(t, c, s.URL(), chatBody("m", false))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Retry-After"))
	assert.Equal(t, "server_error", decodeError(t, body).Error.Type)

	s.SetDown(DownReset)
	_, err := c.Do(newChatRequest(t, s.URL(), chatBody("m", false)))
	require.Error(t, err)
	_, err = c.Get(s.URL() + "/health")
	require.Error(t, err)
	st := s.Stats()
	assert.GreaterOrEqual(t, st.Aborted, int64(2))
	assert.Equal(t, int64(2), st.ByStatus[503])

	s.SetDown(Up)
	assert.Equal(t, http.StatusOK, health())
	assert.Equal(t, "down-reset", DownReset.String())
}

func TestConcurrencySlots(t *testing.T) {
	const lat = 15 * time.Millisecond
	s, c := start(t, Config{Concurrency: 1, Latency: Latency{Fixed: lat}})
	t0 := time.Now()
	var wg sync.WaitGroup
	took := make([]time.Duration, 3)
	for i := range took {
		wg.Go(func() {
			resp, err := c.Do(newChatRequest(t, s.URL(), chatBody("m", false)))
			if assert.NoError(t, err) {
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	slices.Sort(took)
	assert.GreaterOrEqual(t, took[2], 3*lat, "one at a time")
	assert.GreaterOrEqual(t, took[1], 2*lat)
	assert.Equal(t, int64(0), s.Stats().InFlight)

	// Widening the slots lets the queue through.
	s.Update(func(c *Config) { c.Concurrency = 3 })
	t0 = time.Now()
	for range 3 {
		wg.Go(func() {
			resp, err := c.Do(newChatRequest(t, s.URL(), chatBody("m", false)))
			if assert.NoError(t, err) {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	assert.Less(t, time.Since(t0), 3*lat+50*time.Millisecond)
}

func TestSlots(t *testing.T) {
	var sl slots
	sl.init(2)
	ctx := context.Background()
	done := make(chan struct{})
	require.True(t, sl.acquire(ctx, done))
	require.True(t, sl.acquire(ctx, done))

	short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	assert.False(t, sl.acquire(short, done), "full: waits until the context ends")

	got := make(chan bool)
	go func() { got <- sl.acquire(ctx, done) }()
	sl.release()
	assert.True(t, <-got, "a release lets a waiter in")

	go func() { got <- sl.acquire(ctx, done) }()
	sl.setCap(3)
	assert.True(t, <-got, "widening lets a waiter in")

	go func() { got <- sl.acquire(ctx, done) }()
	close(done)
	assert.False(t, <-got, "closing ends the wait")

	sl.setCap(0)
	assert.True(t, sl.acquire(ctx, make(chan struct{})), "0 is unlimited")
}

func TestClientGoneEndsWait(t *testing.T) {
	s, c := start(t, Config{Latency: Latency{Fixed: time.Hour}, Concurrency: 1})
	for range 2 { // one waits in latency, one queued for the slot
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		req := newChatRequest(t, s.URL(), chatBody("m", false)).WithContext(ctx)
		_, err := c.Do(req)
		cancel()
		require.Error(t, err)
	}
	require.Eventually(t, func() bool { return s.Stats().InFlight == 0 }, 2*time.Second, time.Millisecond)
	assert.Equal(t, int64(2), s.Stats().Canceled)
}

func TestCloseEndsWaits(t *testing.T) {
	s, err := StartLLM(Config{Latency: Latency{Fixed: time.Hour}, Concurrency: 1})
	require.NoError(t, err)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			resp, err := c.Do(newChatRequest(t, s.URL(), chatBody("m", false)))
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return s.Stats().InFlight == 3 }, 2*time.Second, time.Millisecond)
	assert.Equal(t, int64(3), s.Stats().MaxInFlight, "queued requests count as in flight")
	t0 := time.Now()
	s.Close()
	assert.Less(t, time.Since(t0), time.Second)
	for range 3 {
		assert.Error(t, <-errs)
	}
	s.Close() // idempotent

	// After Close the handler answers 503 at once.
	assert.Equal(t, http.StatusServiceUnavailable, serve(s, chatBody("m", false)).Code)
}

func TestLatencySample(t *testing.T) {
	l := Latency{Fixed: time.Millisecond, Median: 10 * time.Millisecond, Sigma: 0.5, Max: 40 * time.Millisecond}
	r1, r2 := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(1, 1))
	var ds []time.Duration
	for range 2001 {
		d := l.sample(r1)
		assert.Equal(t, d, l.sample(r2))
		assert.LessOrEqual(t, d, l.Max)
		assert.GreaterOrEqual(t, d, l.Fixed)
		ds = append(ds, d)
	}
	slices.Sort(ds)
	assert.InDelta(t, float64(11*time.Millisecond), float64(ds[1000]), float64(time.Millisecond))
	assert.Equal(t, 3*time.Millisecond, Latency{Fixed: time.Millisecond, Median: 2 * time.Millisecond}.sample(r1))
}

func TestLatencyDelays(t *testing.T) {
	s, c := start(t, Config{Latency: Latency{Fixed: 20 * time.Millisecond}})
	t0 := time.Now()
	resp, _ := do(t, c, s.URL(), chatBody("m", false))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(t0), 20*time.Millisecond)
}

func TestUpdateWhileServing(t *testing.T) {
	s, c := start(t, Config{Seed: 1, Reply: "a b c", ChunkDelay: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			s.Update(func(c *Config) {
				c.ErrorRate = float64(i%3) / 4
				c.Concurrency = i % 3
				c.Seed = uint64(i % 5)
				c.Models = append(c.Models[:0], "m")
				c.RateLimit.Capacity = float64(1000 + i%2)
			})
			_ = s.Stats()
			time.Sleep(100 * time.Microsecond)
		}
	})
	for range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				resp, err := c.Do(newChatRequest(t, s.URL(), chatBody("m", i%2 == 0)))
				if err == nil {
					_, _, _ = readEvents(resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	assert.Positive(t, st.Requests)
	assert.Equal(t, int64(0), st.InFlight)
}

func TestStatsAndReset(t *testing.T) {
	s := NewLLM(Config{Models: []string{"a"}})
	serve(s, chatBody("a", false))
	serve(s, chatBody("a", true))
	serve(s, chatBody("b", false))
	httptestGet(s, "/health")
	httptestGet(s, "/v1/models")
	st := s.Stats()
	assert.Equal(t, int64(5), st.Requests)
	assert.Equal(t, map[string]int64{pathChat: 3, pathHealth: 1, pathModels: 1}, st.ByPath)
	assert.Equal(t, map[int]int64{200: 4, 404: 1}, st.ByStatus)
	assert.Equal(t, map[string]int64{"a": 2, "b": 1}, st.ByModel)
	assert.Equal(t, int64(1), st.MaxInFlight)

	st.ByModel["a"] = 100 // a snapshot
	assert.Equal(t, int64(2), s.Stats().ByModel["a"])

	s.Reset()
	st = s.Stats()
	assert.Zero(t, st.Requests)
	assert.Empty(t, st.ByStatus)
	assert.Empty(t, st.ByModel)
	assert.Zero(t, st.MaxInFlight)
	assert.Equal(t, "fakellm", s.Name())
}
