package httpmw

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/telemetry"
	"github.com/sturdyai/sturdy/sturdytest"
)

func TestFailoverOn503(t *testing.T) {
	down := startLLM(t, sturdytest.Config{Name: "down", Down: sturdytest.Down503})
	up := startLLM(t, sturdytest.Config{Name: "up"})
	tr := newTr(t, WithTier(degrade.Tier{}, ep("down", down.URL(), ""), ep("up", up.URL(), "")))
	for range 4 {
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "up", resp.Header.Get(HeaderEndpoint))
		readAll(t, resp)
	}
	assert.Positive(t, down.Stats().ByStatus[503])
}

func TestFailoverOnConnectionRefused(t *testing.T) {
	up := startLLM(t, sturdytest.Config{Name: "up"})
	tr := newTr(t, WithTier(degrade.Tier{}, ep("gone", closedURL(t), ""), ep("up", up.URL(), "")))
	for range 4 {
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		assert.Equal(t, "up", resp.Header.Get(HeaderEndpoint))
		readAll(t, resp)
	}
}

func TestFailoverOnConnectionReset(t *testing.T) {
	reset := startLLM(t, sturdytest.Config{Name: "reset", Down: sturdytest.DownReset})
	up := startLLM(t, sturdytest.Config{Name: "up"})
	tr := newTr(t, WithTier(degrade.Tier{}, ep("reset", reset.URL(), ""), ep("up", up.URL(), "")))
	for range 4 {
		resp, err := tr.RoundTrip(chatReq(t, "m", true))
		require.NoError(t, err)
		assert.Contains(t, readAll(t, resp), "data: [DONE]")
	}
}

func TestRateLimitedPrimaryCoolsDownAndFallsBack(t *testing.T) {
	primary := startLLM(t, sturdytest.Config{Name: "primary", RateLimit: sturdytest.RateLimit{Always: true, RetryAfter: 30 * time.Second}})
	fallback := startLLM(t, sturdytest.Config{Name: "fallback"})
	tr := newTr(t,
		WithTier(degrade.Tier{Name: "gpt-4o", Model: "gpt-4o"}, ep("primary", primary.URL(), "")),
		WithTier(degrade.Tier{Name: "mini", Model: "gpt-4o-mini"}, ep("fallback", fallback.URL(), "")))
	for range 3 {
		resp, err := tr.RoundTrip(chatReq(t, "gpt-4o", false))
		require.NoError(t, err)
		assert.Equal(t, "mini", resp.Header.Get(HeaderTier))
		assert.Contains(t, readAll(t, resp), "gpt-4o-mini")
	}
	assert.EqualValues(t, 1, primary.Stats().Requests, "after the 429 with Retry-After, the tier cools down")
	assert.EqualValues(t, 3, fallback.Stats().ByModel["gpt-4o-mini"], "the fallback saw its own model")
	assert.EqualValues(t, 0, fallback.Stats().ByModel["gpt-4o"])
	st := tr.Stats()
	assert.Equal(t, []uint64{0, 3}, st.Served)
}

func TestTooLargeMovesToLargerContextWindow(t *testing.T) {
	small := startLLM(t, sturdytest.Config{Name: "small", ContextWindow: 2})
	large := startLLM(t, sturdytest.Config{Name: "large", ContextWindow: 1000})
	tr := newTr(t,
		WithTier(degrade.Tier{Name: "8k", Model: "m-8k", ContextWindow: 8000}, ep("small", small.URL(), "")),
		WithTier(degrade.Tier{Name: "128k", Model: "m-128k", ContextWindow: 128000}, ep("large", large.URL(), "")))
	resp, err := tr.RoundTrip(chatReq(t, "m-8k", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "large", resp.Header.Get(HeaderEndpoint))
	assert.EqualValues(t, 1, small.Stats().ByStatus[400])
	assert.EqualValues(t, 1, large.Stats().ByModel["m-128k"])
}

func TestPromptClearlyOverTheWindowSkipsTheTier(t *testing.T) {
	small := startLLM(t, sturdytest.Config{Name: "small"})
	large := startLLM(t, sturdytest.Config{Name: "large"})
	tr := newTr(t,
		WithTier(degrade.Tier{Name: "tiny", Model: "m-tiny", ContextWindow: 100}, ep("small", small.URL(), "")),
		WithTier(degrade.Tier{Name: "128k", Model: "m-128k", ContextWindow: 128000}, ep("large", large.URL(), "")))
	long := strings.Repeat("lorem ipsum ", 200) // ~2.4 KB: far over 100 tokens
	b, _ := json.Marshal(map[string]any{"model": "m-tiny", "messages": []map[string]string{{"role": "user", "content": long}}})
	req, err := http.NewRequest(http.MethodPost, chatPath, bytes.NewReader(b))
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "large", resp.Header.Get(HeaderEndpoint))
	assert.EqualValues(t, 0, small.Stats().Requests, "the tiny tier must be skipped without an attempt")

	// A short prompt still goes to the primary.
	resp, err = tr.RoundTrip(chatReq(t, "m-tiny", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "small", resp.Header.Get(HeaderEndpoint))
}

func TestHedgeWinsOverSlowEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow, fast, tr := slowThenHedge(t, 500*time.Millisecond)
		start := time.Now()
		resp, err := tr.RoundTrip(chatReq(t, "m", true))
		require.NoError(t, err)
		assert.Equal(t, 20*time.Millisecond, time.Since(start), "answered by the hedge: its delay plus the fast server's zero latency")
		assert.Contains(t, readAll(t, resp), "data: [DONE]")
		assert.Equal(t, 20*time.Millisecond, time.Since(start), "the stream took no time")
		assert.Equal(t, "fast", resp.Header.Get(HeaderEndpoint))
		synctest.Wait()
		st := slow.Stats()
		assert.EqualValues(t, 1, st.Requests, "the slow endpoint got the first attempt")
		assert.EqualValues(t, 1, st.Canceled, "the losing first attempt was cancelled")
		assert.Zero(t, st.InFlight)
		assert.EqualValues(t, 1, fast.Stats().Requests)
	})
}

func TestTTFBTimeoutFailsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		stalled, stalledURL := memLLM(t, mt, sturdytest.Config{Name: "stalled", SlowFirstByte: 3 * time.Second})
		ok, okURL := memLLM(t, mt, sturdytest.Config{Name: "ok"})
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("stalled", stalledURL, ""), ep("ok", okURL, "")),
			WithTTFBTimeout(100*time.Millisecond))
		// The TTFB timeout is for streams; a non-streaming call has
		// WithResponseTimeout (timeouts_test.go).
		tr2 := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("stalled", stalledURL, ""), ep("ok", okURL, "")),
			WithResponseTimeout(100*time.Millisecond))
		for i, tr := range []*Transport{tr, tr2} {
			stream := i == 0
			start := time.Now()
			resp, err := tr.RoundTrip(chatReq(t, "m", stream))
			require.NoError(t, err)
			assert.Equal(t, 100*time.Millisecond, time.Since(start), "failed over at the timeout, not after the 3s stall (stream=%v)", stream)
			readAll(t, resp)
			assert.Equal(t, "ok", resp.Header.Get(HeaderEndpoint))
		}
		synctest.Wait()
		st := stalled.Stats()
		assert.EqualValues(t, 2, st.Requests, "both calls tried the stalled endpoint first")
		assert.EqualValues(t, 2, st.Canceled, "and gave up its stalled first byte")
		assert.Zero(t, st.InFlight)
		assert.EqualValues(t, 2, ok.Stats().Requests)
	})
}

func TestTTFBTimeoutEverywhereIsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		stalled, stalledURL := memLLM(t, mt, sturdytest.Config{Name: "stalled", SlowFirstByte: 3 * time.Second})
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("stalled", stalledURL, "")), WithTTFBTimeout(50*time.Millisecond))
		start := time.Now()
		resp, err := tr.RoundTrip(chatReq(t, "m", true))
		require.Nil(t, resp)
		assert.ErrorIs(t, err, sturdy.ErrTimeout)
		assert.ErrorIs(t, err, ErrTTFB)
		// The lone endpoint is retried (a timeout may pass), up to the
		// attempt cap of 3 (failover.Config.DisableSameEndpointRetry).
		assert.Equal(t, 3*50*time.Millisecond, time.Since(start), "gave up at the third TTFB timeout")
		synctest.Wait()
		assert.EqualValues(t, 3, stalled.Stats().Requests)
		assert.Zero(t, stalled.Stats().InFlight)
	})
}

func TestTruncatedStreamIsUnexpectedEOF(t *testing.T) {
	srv := startLLM(t, sturdytest.Config{Name: "s", TruncateStream: true})
	tr := newTr(t, WithTier(degrade.Tier{}, ep("s", srv.URL(), "")))
	resp, err := tr.RoundTrip(chatReq(t, "m", true))
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Contains(t, string(b), "data: {")
	require.NoError(t, resp.Body.Close())

	off := newTr(t, WithTier(degrade.Tier{}, ep("s", srv.URL(), "")), WithoutStreamTerminator())
	resp, err = off.RoundTrip(chatReq(t, "m", true))
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	assert.NoError(t, err, "terminator checking off")
	require.NoError(t, resp.Body.Close())
}

func TestMidStreamCutSurfacesToCallerAndHealthLearns(t *testing.T) {
	cut := startLLM(t, sturdytest.Config{Name: "cut", MidStreamCut: 3})
	other := startLLM(t, sturdytest.Config{Name: "other"})
	tr := newTr(t,
		WithTier(degrade.Tier{}, ep("cut", cut.URL(), ""), ep("other", other.URL(), "")),
		WithHealth(health.Config{ConsecutiveFailures: 1, MaxEjectedShare: 1}))
	resp, err := tr.RoundTrip(chatReq(t, "m", true))
	require.NoError(t, err)
	require.Equal(t, "cut", resp.Header.Get(HeaderEndpoint))
	_, err = io.ReadAll(resp.Body)
	assert.Error(t, err, "the cut reaches the caller")
	require.NoError(t, resp.Body.Close())
	assert.EqualValues(t, 0, other.Stats().Requests, "no failover after the first byte")
	assert.Equal(t, health.Ejected, tr.State("cut"), "the amended outcome reached health")
}

// credTap passes each request on to h and records the credential headers
// it carried: Authorization and any header with "key" in its name.
type credTap struct {
	h     http.Handler
	mu    sync.Mutex
	creds []string // of each request: "Key: value" of each credential header, sorted, "; "-separated
}

func (c *credTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var kvs []string
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Authorization") || strings.Contains(strings.ToLower(k), "key") {
			for _, v := range vs {
				kvs = append(kvs, k+": "+v)
			}
		}
	}
	slices.Sort(kvs)
	c.mu.Lock()
	c.creds = append(c.creds, strings.Join(kvs, "; "))
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

// seen returns the distinct credential sets received, sorted, and how
// many requests came.
func (c *credTap) seen() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Compact(slices.Sorted(slices.Values(c.creds))), len(c.creds)
}

func TestCredentialsIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		// Every server requires its own key and records every key it sees.
		// a answers after 2ms, so that the 1ms hedge delay passes while an
		// attempt on a is in flight: first attempts, hedges, retries and
		// fallbacks all go out.
		a := sturdytest.NewLLM(sturdytest.Config{Name: "a", RequiredAPIKey: "key-a", ErrorRate: 0.5, Seed: 3, Latency: sturdytest.Latency{Fixed: 2 * time.Millisecond}})
		b := sturdytest.NewLLM(sturdytest.Config{Name: "b", RequiredAPIKey: "key-b", RateLimit: sturdytest.RateLimit{Share: 0.5}, Seed: 4})
		c := sturdytest.NewLLM(sturdytest.Config{Name: "c", RequiredAPIKey: "key-c"})
		taps := map[string]*credTap{}
		urls := map[string]string{}
		for _, s := range []*sturdytest.Server{a, b, c} {
			t.Cleanup(s.Close)
			taps[s.Name()] = &credTap{h: s}
			urls[s.Name()] = mt.add(taps[s.Name()])
		}
		sr := tracetest.NewSpanRecorder()
		tr := newMemTr(t, mt, WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))),
			WithTier(degrade.Tier{Name: "p"}, ep("a", urls["a"], "key-a"),
				URL("b", urls["b"], http.Header{"api-key": {"key-b"}})),
			WithTier(degrade.Tier{Name: "f", Model: "small"}, ep("c", urls["c"], "key-c")),
			WithHedge(hedge.Config{Delay: time.Millisecond, BudgetRatio: -1}))
		// How a call is served tells its path, to the fake millisecond: b
		// at once (first attempt) or at the hedge delay (hedge); a after
		// its 2ms (first, or retry after b's 429); c after a's 2ms and its
		// 500 (fallback).
		paths := map[string]bool{"b 0s": true, "b 1ms": true, "a 2ms": true, "c 2ms": true}
		for i := range 30 {
			req := chatReq(t, "m", i%2 == 0)
			req.Header.Set("Api-Key", "caller-api-key")
			req.Header.Set("X-Api-Key", "caller-x-api-key")
			start := time.Now()
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			readAll(t, resp)
			assert.NotEqual(t, 401, resp.StatusCode)
			path := resp.Header.Get(HeaderEndpoint) + " " + time.Since(start).String()
			assert.True(t, paths[path], "call %d: served by %s", i, path)
			// Past the 1s Retry-After of b's 429s, which keeps b (or all
			// of tier p) out until then: every call starts with both of
			// tier p's endpoints available.
			time.Sleep(2 * time.Second)
		}
		synctest.Wait()
		for _, s := range []*sturdytest.Server{a, b, c} {
			assert.Equal(t, []string{"key-" + s.Name()}, s.SeenCredentials(), "server %s", s.Name())
			assert.Zero(t, s.Stats().ForeignCredentials)
		}
		assert.Positive(t, c.Stats().Requests, "the fallback tier was used too")

		// Every request carried its endpoint's credential and nothing
		// else: neither the caller's Authorization, Api-Key or X-Api-Key
		// nor another endpoint's.
		want := map[string]string{"a": "Authorization: Bearer key-a", "b": "Api-Key: key-b", "c": "Authorization: Bearer key-c"}
		attempts := map[string]int{} // by endpoint
		kinds := map[string]int{}    // by attempt kind
		for _, s := range sr.Ended() {
			if s.Name() != telemetry.SpanAttempt {
				continue
			}
			set := attribute.NewSet(s.Attributes()...)
			e, _ := set.Value(telemetry.KeyEndpoint)
			k, _ := set.Value(telemetry.KeyAttemptKind)
			attempts[e.AsString()]++
			kinds[k.AsString()]++
		}
		for name, tap := range taps {
			seen, n := tap.seen()
			assert.Equal(t, []string{want[name]}, seen, "server %s", name)
			assert.Equal(t, attempts[name], n, "server %s got every attempt on it", name)
		}
		assert.Positive(t, kinds["first"], "%v", kinds)
		assert.Positive(t, kinds["hedge"], "%v", kinds)
		assert.Positive(t, kinds["retry"], "%v", kinds)
	})
}

func TestCallerCredentialsPassThroughWhenAllowed(t *testing.T) {
	rec := newRecorder(t, okJSON)
	tr := newTr(t, WithTier(degrade.Tier{}, ep("r", rec.URL, "")), WithCallerCredentials())
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "Bearer caller-key", rec.header(0).Get("Authorization"))
}

func TestRedirectNeverCarriesACredentialToAnotherHost(t *testing.T) {
	foreign := newRecorder(t, okJSON)
	var target string
	origin := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/v1/abs":
			http.Redirect(w, r, target, http.StatusTemporaryRedirect)
		case "/v1/rel":
			http.Redirect(w, r, "/v1/final", http.StatusTemporaryRedirect)
		default:
			okJSON(w, r, n)
		}
	})
	target = foreign.URL + "/elsewhere"
	tr := newTr(t, WithTier(degrade.Tier{}, ep("origin", origin.URL, "origin-key")))
	client := &http.Client{Transport: tr}

	req, err := http.NewRequest(http.MethodGet, "http://llm.invalid/v1/abs", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer caller-key")
	resp, err := client.Do(req)
	require.NoError(t, err)
	readAll(t, resp)
	require.Equal(t, 1, foreign.count())
	assert.Empty(t, foreign.header(0).Get("Authorization"), "neither the endpoint's nor the caller's key")
	assert.Empty(t, resp.Header.Get(HeaderEndpoint))

	req, err = http.NewRequest(http.MethodGet, "http://llm.invalid/v1/rel", nil)
	require.NoError(t, err)
	resp, err = client.Do(req)
	require.NoError(t, err)
	readAll(t, resp)
	require.Equal(t, 3, origin.count())
	assert.Equal(t, "/v1/final", origin.paths[2])
	assert.Equal(t, "Bearer origin-key", origin.header(2).Get("Authorization"), "a relative redirect stays on the endpoint")
}

func TestModelRewriteIsByteExact(t *testing.T) {
	down := newRecorder(t, status(503))
	fb := newRecorder(t, okJSON)
	tr := newTr(t,
		WithTier(degrade.Tier{}, ep("down", down.URL, "")),
		WithTier(degrade.Tier{Model: "tiny-\"model\""}, ep("fb", fb.URL, "")))
	in := "{ \"stream\":false,\n\t\"model\" : \"big\", \"x\":1.0e3, \"meta\":{\"model\":\"keep\"} }"
	req, err := http.NewRequest(http.MethodPost, chatPath, strings.NewReader(in))
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, in, string(down.body(0)), "the primary gets the caller's bytes")
	assert.Equal(t, "{ \"stream\":false,\n\t\"model\" : \"tiny-\\\"model\\\"\", \"x\":1.0e3, \"meta\":{\"model\":\"keep\"} }", string(fb.body(0)))
	assert.Equal(t, resp.Request.ContentLength, int64(len(in)))
}

func TestMalformedJSONOnFallbackFailsFatal(t *testing.T) {
	down := newRecorder(t, status(503))
	fb := newRecorder(t, okJSON)
	tr := newTr(t,
		WithTier(degrade.Tier{}, ep("down", down.URL, "")),
		WithTier(degrade.Tier{Model: "small"}, ep("fb", fb.URL, "")))
	req, err := http.NewRequest(http.MethodPost, chatPath, strings.NewReader(`{"model":"big",`))
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.Nil(t, resp)
	assert.ErrorIs(t, err, sturdy.ErrFatal)
	assert.Contains(t, err.Error(), "wrong model")
	assert.Equal(t, 0, fb.count(), "never sent with the wrong model")
}

func TestModelRewriteHook(t *testing.T) {
	down := newRecorder(t, status(503))
	fb := newRecorder(t, okJSON)
	tr := newTr(t,
		WithTier(degrade.Tier{}, ep("down", down.URL, "")),
		WithTier(degrade.Tier{Model: "small"}, ep("fb", fb.URL, "")),
		WithModelRewrite(func(tier degrade.Tier, _ *http.Request, body []byte) ([]byte, error) {
			return []byte(strings.ReplaceAll(string(body), "model=big", "model="+tier.Model)), nil
		}))
	req, err := http.NewRequest(http.MethodPost, chatPath, strings.NewReader("a=1&model=big"))
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "a=1&model=small", string(fb.body(0)))
}

func TestFinalErrorResponseIsMarkedAndSummarised(t *testing.T) {
	a := newRecorder(t, status(503))
	b := newRecorder(t, status(502))
	tr := newTr(t, WithTier(degrade.Tier{}, ep("a", a.URL, ""), ep("b", b.URL, "")))
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	body := readAll(t, resp)
	assert.Equal(t, 502, resp.StatusCode)
	assert.Equal(t, `{"error":{"message":"nope"}}`, body)
	assert.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
	assert.Equal(t, "a:unavailable, b:unavailable", resp.Header.Get(HeaderAttempts))
	assert.Equal(t, "b", resp.Header.Get(HeaderEndpoint))
}

func TestFailedEverywhereWithoutResponseIsSturdyError(t *testing.T) {
	tr := newTr(t, WithTier(degrade.Tier{}, ep("a", closedURL(t), ""), ep("b", closedURL(t), "")))
	client := &http.Client{Transport: tr}
	resp, err := client.Post(chatPath, "application/json", strings.NewReader(`{"model":"m"}`))
	require.Nil(t, resp)
	var se *sturdy.Error
	require.True(t, errors.As(err, &se), "%T %v", err, err)
	assert.Equal(t, sturdy.Unavailable, se.Class)
	assert.Len(t, se.Attempts, 2, "a tier whose every endpoint failed is not retried again")
	assert.ErrorIs(t, err, sturdy.ErrUnavailable)
}

func TestFatalIsReturnedAsIs(t *testing.T) {
	bad := newRecorder(t, status(422))
	other := newRecorder(t, okJSON)
	tr := newTr(t, WithTier(degrade.Tier{}, ep("bad", bad.URL, ""), ep("other", other.URL, "")))
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, 422, resp.StatusCode)
	assert.Equal(t, 0, other.count(), "a fatal error is not retried")
}

func TestPathsJoinTheEndpointPrefix(t *testing.T) {
	rec := newRecorder(t, okJSON)
	cases := []struct{ base, reqURL, want string }{
		{rec.URL, "http://x/v1/chat/completions", "/v1/chat/completions"},
		{rec.URL + "/openai", "http://x/v1/chat/completions?api-version=1", "/openai/v1/chat/completions?api-version=1"},
		{rec.URL + "/openai/", "http://x/v1/a%2Fb", "/openai/v1/a%2Fb"},
		{rec.URL + "/a%20b", "http://x/v1", "/a%20b/v1"},
		{rec.URL + "/p", "http://x", "/p/"},
	}
	for i, tc := range cases {
		tr := newTr(t, WithTier(degrade.Tier{}, ep("r", tc.base, "")))
		req, err := http.NewRequest(http.MethodGet, tc.reqURL, nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		readAll(t, resp)
		assert.Equal(t, tc.want, rec.paths[i], "base %s + %s", tc.base, tc.reqURL)
	}
}

func TestProbesSendEndpointHeadersAndStopOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		probed := &memRec{h: okJSON}
		u := mt.add(probed)
		tr, err := NewTransport(mt, append(testOpts(),
			WithTier(degrade.Tier{}, ep("p", u+"/base", "probe-key")),
			WithProbes(health.ProbeConfig{Interval: 10 * time.Millisecond, Jitter: -1}), WithProbePath("healthz"))...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		synctest.Wait()
		assert.Equal(t, 1, probed.count(), "the first probe goes out at once")
		time.Sleep(25 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 3, probed.count(), "then one every 10ms: at 0, 10ms and 20ms")
		require.NoError(t, tr.Close())
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, 3, probed.count(), "no probe after Close")
		for i := range probed.count() {
			assert.Equal(t, "/base/healthz", probed.path(i))
			assert.Equal(t, "Bearer probe-key", probed.header(i).Get("Authorization"))
		}
	})
}

func TestAccessors(t *testing.T) {
	a := startLLM(t, sturdytest.Config{Name: "a"})
	tr := newTr(t, WithTier(degrade.Tier{Name: "p"}, ep("a", a.URL(), "")),
		WithTier(degrade.Tier{Name: "f"}, ep("b", a.URL(), "")))
	assert.Equal(t, []string{"a", "b"}, tr.Endpoints())
	assert.Equal(t, []string{"p", "f"}, tr.Tiers())
	tier, ok := tr.EndpointTier("b")
	assert.True(t, ok)
	assert.Equal(t, "f", tier)
	av, ok := tr.Availability("a")
	assert.True(t, ok)
	assert.Equal(t, 1.0, av.Availability)
	assert.Equal(t, health.Healthy, tr.State("a"))
	assert.True(t, slices.Equal([]uint64{0, 0}, tr.Stats().Served))
}

// A served call's state goes back to the pool when its body is released
// (respBody.c), and the next call may take it: a body used after its
// release (a second Close, a Read) must not reach the state it gave back,
// or it would report the next call, which is still being read, as done.
func TestBodyAfterReleaseLeavesTheNextCallAlone(t *testing.T) {
	var mu sync.Mutex
	var ended []sturdy.Attempt
	base := &captureBase{}
	tr := newCaptureTr(t, base, WithTier(degrade.Tier{}, ep("a", "http://127.0.0.1:1", "key-a")),
		WithOnAttempt(func(a sturdy.Attempt) {
			mu.Lock()
			ended = append(ended, a)
			mu.Unlock()
		}))
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ended)
	}
	for range 20 {
		before := count()
		first, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		readAll(t, first) // EOF releases the call
		require.Equal(t, before+1, count(), "the first call is reported at its EOF")

		second, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		require.NoError(t, first.Body.Close())
		n, err := first.Body.Read(make([]byte, 8))
		assert.Zero(t, n)
		assert.ErrorIs(t, err, io.EOF, "a released body stays at its end")
		assert.Equal(t, before+1, count(), "the released body reported the second call, which is still open")

		readAll(t, second)
		require.NoError(t, second.Body.Close())
		assert.Equal(t, before+2, count(), "the second call is reported once, at its EOF")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range ended {
		assert.Equal(t, sturdy.Success, a.Class)
	}
	assert.Equal(t, uint64(40), tr.Stats().Served[0])
}
