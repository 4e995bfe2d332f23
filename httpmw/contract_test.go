package httpmw

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/ratelimit"
	"github.com/sturdyai/sturdy/sturdytest"
)

// The net/http.RoundTripper contract, one test per rule.

// callConcurrently makes 64 calls through tr from 16 goroutines at once,
// half of them streamed, reads each answer whole and hands it to served
// with the time the call took; an error fails the test.
func callConcurrently(t *testing.T, tr *Transport, served func(resp *http.Response, took time.Duration)) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			for range 4 {
				start := time.Now()
				resp, err := tr.RoundTrip(chatReq(t, "m", i%2 == 0))
				if err != nil {
					errs <- err
					return
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					errs <- err
				}
				_ = resp.Body.Close()
				served(resp, time.Since(start))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestContractConcurrentUse(t *testing.T) {
	// 64 calls from 16 goroutines at once. In a bubble goroutines still
	// run in parallel (the race detector sees them); only time is fake,
	// so every path of a hedged call runs, and each takes an exact time:
	// a answers at once (or fails: 500 for 30% of its requests), b after
	// 10ms, and the hedge delay is 5ms.
	//   - first on a, which answers: a at 0;
	//   - first on a, which fails: the retry on b answers at 10ms;
	//   - first on b: the hedge on a at 5ms answers and b is cancelled,
	//     or fails and b answers at 10ms.
	t.Run("fake clock", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			mt := newMemTransport(t)
			a, aURL := memLLM(t, mt, sturdytest.Config{Name: "a", ErrorRate: 0.3, Seed: 1})
			b, bURL := memLLM(t, mt, sturdytest.Config{Name: "b", Seed: 2, Latency: sturdytest.Latency{Fixed: 10 * time.Millisecond}})
			tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("a", aURL, ""), ep("b", bURL, "")),
				WithHedge(hedge.Config{Delay: 5 * time.Millisecond, BudgetRatio: -1}))
			var mu sync.Mutex
			served := map[string]int{} // "endpoint after duration"
			callConcurrently(t, tr, func(resp *http.Response, took time.Duration) {
				mu.Lock()
				served[resp.Header.Get(HeaderEndpoint)+" after "+took.String()]++
				mu.Unlock()
			})
			synctest.Wait()
			first, hedged, failed := served["a after 0s"], served["a after 5ms"], served["b after 10ms"]
			assert.Equal(t, 64, first+hedged+failed, "no other endpoint or time: %v", served)
			assert.Positive(t, first, "%v", served)
			assert.Positive(t, hedged, "%v", served)
			assert.Positive(t, failed, "%v", served)
			sa, sb := a.Stats(), b.Stats()
			assert.EqualValues(t, 64, sa.Requests, "every call reached a once: first, or hedged after b's 5ms")
			assert.EqualValues(t, failed, sa.ByStatus[500], "each of a's failures was answered by b")
			assert.EqualValues(t, hedged+failed, sb.Requests)
			assert.EqualValues(t, hedged, sb.Canceled, "each hedge that won cancelled b")
			assert.EqualValues(t, failed, sb.ByStatus[200])
			assert.True(t, sa.InFlight == 0 && sb.InFlight == 0, "%+v %+v", sa, sb)
		})
	})
	// Outside a bubble, over real sockets: a hedged call whose first
	// attempt answers before the delay gives its state to the next call
	// through a pool, which calls in a bubble never use (a pooled timer
	// would run on real time). This is the common case in production, so
	// it runs concurrently under -race here too. Which calls hedge
	// depends on real timing; nothing asserted here does.
	t.Run("pooled", func(t *testing.T) {
		a := startLLM(t, sturdytest.Config{Name: "a", ErrorRate: 0.3, Seed: 1})
		b := startLLM(t, sturdytest.Config{Name: "b", Seed: 2})
		tr := newTr(t, WithTier(degrade.Tier{}, ep("a", a.URL(), ""), ep("b", b.URL(), "")),
			WithHedge(hedge.Config{Delay: 5 * time.Millisecond, BudgetRatio: -1}))
		callConcurrently(t, tr, func(*http.Response, time.Duration) {})
	})
}

func TestContractNeverBothResponseAndError(t *testing.T) {
	ok := newRecorder(t, okJSON)
	unavailable := newRecorder(t, status(503))
	bad := newRecorder(t, status(404))
	refused := closedURL(t)
	cases := []struct {
		name string
		eps  []Endpoint
		lim  ratelimit.Limit
	}{
		{"success", []Endpoint{ep("ok", ok.URL, "")}, ratelimit.Limit{}},
		{"every endpoint 503", []Endpoint{ep("u", unavailable.URL, "")}, ratelimit.Limit{}},
		{"fatal 404", []Endpoint{ep("bad", bad.URL, "")}, ratelimit.Limit{}},
		{"refused", []Endpoint{ep("r", refused, "")}, ratelimit.Limit{}},
		{"limited", []Endpoint{ep("ok", ok.URL, "")}, ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTr(t, WithTier(degrade.Tier{Limit: tc.lim}, tc.eps...))
			for range 2 {
				resp, err := tr.RoundTrip(chatReq(t, "m", false))
				assert.True(t, (resp == nil) != (err == nil), "resp %v, err %v", resp, err)
				if resp != nil {
					readAll(t, resp)
				}
			}
		})
	}
}

func TestContractRequestNotModified(t *testing.T) {
	down := newRecorder(t, status(503))
	fb := newRecorder(t, okJSON)
	tr := newTr(t,
		WithTier(degrade.Tier{Name: "p"}, ep("down", down.URL+"/prefix", "k1")),
		WithTier(degrade.Tier{Name: "f", Model: "small"}, ep("fb", fb.URL, "k2")))
	req := chatReq(t, "big", false)
	req.Header.Set("X-Custom", "1")
	wantURL, wantHdr, wantHost, wantLen := req.URL.String(), req.Header.Clone(), req.Host, req.ContentLength
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, wantURL, req.URL.String())
	assert.Equal(t, wantHdr, req.Header)
	assert.Equal(t, wantHost, req.Host)
	assert.Equal(t, wantLen, req.ContentLength)
	assert.Equal(t, `{"messages":[{"content":"hello there","role":"user"}],"model":"small","stream":false}`, string(fb.body(0)))
	assert.Same(t, req, resp.Request, "the response names the caller's request")
}

func TestContractRequestBodyAlwaysClosed(t *testing.T) {
	mk := func(t *testing.T, getBody bool, payload string) (*http.Request, *trackBody) {
		b := &trackBody{Reader: strings.NewReader(payload)}
		req, err := http.NewRequest(http.MethodPost, chatPath, b)
		require.NoError(t, err)
		if getBody {
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(payload)), nil }
		}
		return req, b
	}
	// ok and down are the URLs of a 200 and a 503 server on mt.
	cases := []struct {
		name string
		tr   func(t *testing.T, mt *memTransport, ok, down string) *Transport
		body string
	}{
		{"success", func(t *testing.T, mt *memTransport, ok, _ string) *Transport {
			return newMemTr(t, mt, WithTier(degrade.Tier{}, ep("ok", ok, "")))
		}, `{"model":"m"}`},
		{"limiter refusal", func(t *testing.T, mt *memTransport, ok, _ string) *Transport {
			tr := newMemTr(t, mt, WithTier(degrade.Tier{Limit: ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}}, ep("ok", ok, "")))
			resp, err := tr.RoundTrip(chatReq(t, "m", false)) // spends the burst
			require.NoError(t, err)
			readAll(t, resp)
			return tr
		}, `{"model":"m"}`},
		{"closed transport", func(t *testing.T, mt *memTransport, ok, _ string) *Transport {
			tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("ok", ok, "")))
			require.NoError(t, tr.Close())
			return tr
		}, `{"model":"m"}`},
		{"rewrite refused: malformed JSON", func(t *testing.T, mt *memTransport, ok, down string) *Transport {
			return newMemTr(t, mt, WithTier(degrade.Tier{}, ep("down", down, "")),
				WithTier(degrade.Tier{Model: "small"}, ep("ok", ok, "")))
		}, `{"model":`},
	}
	for _, tc := range cases {
		for _, getBody := range []bool{true, false} {
			t.Run(tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					mt := newMemTransport(t)
					tr := tc.tr(t, mt, mt.add(&memRec{h: okJSON}), mt.add(&memRec{h: status(503)}))
					req, b := mk(t, getBody, tc.body)
					resp, err := tr.RoundTrip(req)
					if err == nil {
						readAll(t, resp)
					}
					synctest.Wait() // every goroutine of the call, the base's included, is done or blocked for good
					assert.GreaterOrEqual(t, b.closed.Load(), int32(1), "getBody=%v", getBody)
				})
			})
		}
	}
}

func TestContractEachAttemptGetsItsOwnBody(t *testing.T) {
	for _, getBody := range []bool{true, false} {
		down := newRecorder(t, status(503))
		ok := newRecorder(t, okJSON)
		tr := newTr(t, WithTier(degrade.Tier{}, ep("down", down.URL, ""), ep("ok", ok.URL, "")))
		payload := chatBody("m", false)
		req, err := http.NewRequest(http.MethodPost, chatPath, io.NopCloser(bytes.NewReader(payload)))
		require.NoError(t, err)
		if getBody {
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
		}
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		readAll(t, resp)
		require.Equal(t, 1, down.count())
		require.Equal(t, 1, ok.count())
		assert.Equal(t, payload, down.body(0), "getBody=%v", getBody)
		assert.Equal(t, payload, ok.body(0), "getBody=%v", getBody)
	}
}

func TestContractUnreplayableBodySentOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		// down answers after 10ms: the 1ms hedge delay passes while its
		// attempt is in flight, so a hedge, were there one, would go out.
		down := &memRec{h: func(w http.ResponseWriter, r *http.Request, n int) {
			time.Sleep(10 * time.Millisecond)
			status(503)(w, r, n)
		}}
		ok := &memRec{h: okJSON}
		tr := newMemTr(t, mt, WithMaxBodyBuffer(16),
			WithTier(degrade.Tier{}, ep("down", mt.add(down), ""), ep("ok", mt.add(ok), "")),
			WithHedge(hedge.Config{Delay: time.Millisecond, BudgetRatio: -1}))
		payload := chatBody("m", false)
		req, err := http.NewRequest(http.MethodPost, chatPath, io.NopCloser(bytes.NewReader(payload)))
		require.NoError(t, err)
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 10*time.Millisecond, time.Since(start), "down's answer, neither hedged nor retried")
		body := readAll(t, resp)
		assert.Equal(t, 503, resp.StatusCode, body)
		synctest.Wait()
		assert.Equal(t, 1, down.count()+ok.count(), "sent once")
		assert.Zero(t, ok.count(), "no hedge, no retry")
		assert.Equal(t, payload, down.body(0), "the whole body went out")
		assert.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
		assert.Equal(t, "down:unavailable", resp.Header.Get(HeaderAttempts), "one attempt in all")
	})
}

func TestContractDiscardedResponsesDrainedAndConnectionReused(t *testing.T) {
	down := newRecorder(t, status(503))
	ok := newRecorder(t, okJSON)
	tr := newTr(t, WithTier(degrade.Tier{}, ep("down", down.URL, ""), ep("ok", ok.URL, "")))
	for range 6 {
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		readAll(t, resp)
	}
	require.GreaterOrEqual(t, down.count(), 3)
	assert.EqualValues(t, 1, down.newConns.Load(), "retried 503s are drained, so their connection is reused")
	assert.EqualValues(t, 1, ok.newConns.Load())
}

func TestContractLosingHedgeIsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow, _, tr := slowThenHedge(t, 300*time.Millisecond)
		start := time.Now()
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		readAll(t, resp)
		assert.Equal(t, "fast", resp.Header.Get(HeaderEndpoint))
		synctest.Wait()
		st := slow.Stats()
		assert.Equal(t, 20*time.Millisecond, time.Since(start), "the loser was cancelled, not waited for")
		assert.True(t, st.InFlight == 0 && st.Canceled == 1, "the losing hedge is cancelled: %+v", st)
	})
}

// ctxTap is a base that keeps the context of each request before passing
// it on to rt: the context of each attempt.
type ctxTap struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	ctxs []context.Context
}

func (c *ctxTap) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.ctxs = append(c.ctxs, req.Context())
	c.mu.Unlock()
	return c.rt.RoundTrip(req)
}

func (c *ctxTap) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ctxs)
}

func (c *ctxTap) ctx(i int) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctxs[i]
}

func TestContractWinnerContextLivesUntilBodyClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		srv, u := memLLM(t, mt, sturdytest.Config{Name: "s", ChunkDelay: 200 * time.Millisecond})
		// With hedging the winner runs on its own context, which the call
		// must keep alive until the body is closed: past the hedge delay
		// and the TTFB timeout (1s each), while the stream goes on for 1.6s.
		tap := &ctxTap{rt: mt}
		tr := newMemTr(t, tap, WithTier(degrade.Tier{}, ep("s", u, "")),
			WithHedge(hedge.Config{Delay: time.Second, BudgetRatio: -1}), WithTTFBTimeout(time.Second))

		start := time.Now()
		resp, err := tr.RoundTrip(chatReq(t, "m", true))
		require.NoError(t, err)
		assert.Zero(t, time.Since(start), "the first chunk comes at once")
		require.Equal(t, 1, tap.count())
		won := tap.ctx(0)
		// The events, one per line, with when each arrived: 9 chunks (the
		// role, 7 words, the stop) 200ms apart, then data: [DONE] with
		// the last, all after RoundTrip returned.
		var body strings.Builder
		var at []time.Duration
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			body.WriteString(line)
			if strings.HasPrefix(line, "data: ") {
				at = append(at, time.Since(start))
			}
			if line == "data: [DONE]\n" {
				assert.NoError(t, won.Err(), "the winner's context is alive at 1.6s, past the hedge delay and the TTFB timeout")
			}
			if err != nil {
				require.ErrorIs(t, err, io.EOF)
				break
			}
		}
		require.NoError(t, resp.Body.Close())
		assert.Contains(t, body.String(), "data: [DONE]")
		ms := func(n time.Duration) time.Duration { return n * time.Millisecond }
		assert.Equal(t, []time.Duration{0, ms(200), ms(400), ms(600), ms(800), ms(1000), ms(1200), ms(1400), ms(1600), ms(1600)}, at)
		assert.ErrorIs(t, won.Err(), context.Canceled, "released with the body")
		synctest.Wait()
		st := srv.Stats()
		assert.True(t, st.Requests == 1 && st.ByStatus[200] == 1 && st.Canceled == 0 && st.InFlight == 0,
			"one request, streamed to its end: %+v", st)

		// A caller that stops reading: the winner's context outlives every
		// timer of the call, and ends when the body is closed.
		resp, err = tr.RoundTrip(chatReq(t, "m", true))
		require.NoError(t, err)
		require.Equal(t, 2, tap.count())
		won = tap.ctx(1)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.NoError(t, won.Err(), "alive while the body is open, 5s on")
		require.NoError(t, resp.Body.Close())
		assert.ErrorIs(t, won.Err(), context.Canceled, "ended by Close")
		synctest.Wait()
		st = srv.Stats()
		assert.True(t, st.Requests == 2 && st.Canceled == 1 && st.InFlight == 0, "the second stream was cut by Close: %+v", st)
	})
}

func TestContractCallerCancelIsCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		srv, u := memLLM(t, mt, sturdytest.Config{Name: "s", Latency: sturdytest.Latency{Fixed: time.Second}})
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("s", u, "")))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		resp, err := tr.RoundTrip(chatReq(t, "m", false).WithContext(ctx))
		require.Nil(t, resp)
		assert.True(t, errors.Is(err, sturdy.ErrCanceled), "%v", err)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "the caller's own error")
		assert.Equal(t, 30*time.Millisecond, time.Since(start), "returned at the caller's deadline, not after the server's 1s")
		synctest.Wait()
		st := srv.Stats()
		assert.EqualValues(t, 1, st.Requests, "not retried")
		assert.EqualValues(t, 1, st.Canceled, "the server saw its request cancelled")
		assert.Zero(t, st.InFlight)
	})
}

// nilBase breaks the RoundTripper contract: neither a response nor an error.
type nilBase struct{}

func (nilBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, nil
}

// A base that answers (nil, nil) gives an error, never a panic or a
// (nil, nil) of the Transport's own: on attempts, on redirects, on probes.
func TestContractBrokenBaseIsAnError(t *testing.T) {
	a := ep("a", "http://127.0.0.1:1", "key-a")
	tr, err := NewTransport(nilBase{}, append(testOpts(), WithTier(degrade.Tier{}, a))...)
	require.NoError(t, err)
	defer tr.Close()

	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	assert.Nil(t, resp)
	assert.Error(t, err)

	redirected := chatReq(t, "m", false)
	redirected.Response = &http.Response{Header: http.Header{HeaderEndpoint: {"a"}}}
	resp, err = tr.RoundTrip(redirected)
	assert.Nil(t, resp)
	assert.ErrorIs(t, err, errNoResponse)

	p := &prober{t: tr}
	assert.ErrorIs(t, p.Probe(context.Background(), a.Endpoint), errNoResponse)
}
