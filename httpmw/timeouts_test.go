package httpmw

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/sturdytest"
)

// The must-show: a 90 s non-streaming completion with a 10 s TTFB
// timeout succeeds; a stream that sends nothing for 10 s fails over.
func TestTTFBTimeoutIsForStreamsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		slow, slowURL := memLLM(t, mt, sturdytest.Config{Name: "slow", Latency: sturdytest.Latency{Fixed: 90 * time.Second}})
		ok, okURL := memLLM(t, mt, sturdytest.Config{Name: "ok"})
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("slow", slowURL, ""), ep("ok", okURL, "")),
			WithTTFBTimeout(10*time.Second))

		start := time.Now()
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		assert.Equal(t, 90*time.Second, time.Since(start), "the 90 s completion was waited for")
		assert.Equal(t, "slow", resp.Header.Get(HeaderEndpoint))
		assert.Contains(t, readAll(t, resp), "Hello from slow")

		tr = newMemTr(t, mt, WithTier(degrade.Tier{}, ep("slow", slowURL, ""), ep("ok", okURL, "")),
			WithTTFBTimeout(10*time.Second)) // round-robin from slow again
		start = time.Now()
		resp, err = tr.RoundTrip(chatReq(t, "m", true))
		require.NoError(t, err)
		assert.Equal(t, 10*time.Second, time.Since(start), "the silent stream failed over at the TTFB timeout")
		assert.Equal(t, "ok", resp.Header.Get(HeaderEndpoint))
		readAll(t, resp)
		synctest.Wait()
		assert.EqualValues(t, 2, slow.Stats().Requests)
		assert.EqualValues(t, 1, slow.Stats().Canceled, "the stream's attempt was given up")
		assert.EqualValues(t, 1, ok.Stats().Requests)
	})
}

func TestResponseTimeoutIsForNonStreamingCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		_, slowURL := memLLM(t, mt, sturdytest.Config{Name: "slow", Latency: sturdytest.Latency{Fixed: 90 * time.Second}})
		_, okURL := memLLM(t, mt, sturdytest.Config{Name: "ok"})
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("slow", slowURL, ""), ep("ok", okURL, "")),
			WithResponseTimeout(60*time.Second))

		start := time.Now()
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		assert.Equal(t, 60*time.Second, time.Since(start), "failed over at the response timeout")
		assert.Equal(t, "ok", resp.Header.Get(HeaderEndpoint))
		readAll(t, resp)

		tr = newMemTr(t, mt, WithTier(degrade.Tier{}, ep("slow", slowURL, ""), ep("ok", okURL, "")),
			WithResponseTimeout(60*time.Second))
		start = time.Now()
		resp, err = tr.RoundTrip(chatReq(t, "m", true))
		require.NoError(t, err)
		assert.Equal(t, 90*time.Second, time.Since(start), "a stream is not bound by the response timeout")
		assert.Equal(t, "slow", resp.Header.Get(HeaderEndpoint))
		readAll(t, resp)
	})
}

func TestTimeoutsEverywhereGiveErrResponseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		_, slowURL := memLLM(t, mt, sturdytest.Config{Name: "slow", Latency: sturdytest.Latency{Fixed: 90 * time.Second}})
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("slow", slowURL, "")), WithResponseTimeout(time.Second))
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.Nil(t, resp)
		assert.ErrorIs(t, err, sturdy.ErrTimeout)
		assert.ErrorIs(t, err, ErrResponseTimeout)
	})
}

func TestTimeoutsOverriddenPerCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		rec := &memRec{h: func(w http.ResponseWriter, r *http.Request, _ int) {
			select { // a reasoning model, on the bubble's clock
			case <-time.After(90 * time.Second):
				okJSON(w, r, 0)
			case <-r.Context().Done():
			}
		}}
		u := mt.add(rec)
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("r", u, "")),
			WithResponseTimeout(10*time.Second), WithTTFBTimeout(10*time.Second))

		// A context value lifts the response timeout for this call.
		req := chatReq(t, "m", false)
		req = req.WithContext(ContextWithTimeouts(req.Context(), Timeouts{Response: 2 * time.Minute}))
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 90*time.Second, time.Since(start))
		readAll(t, resp)

		// A negative value turns it off.
		req = chatReq(t, "m", false)
		req = req.WithContext(ContextWithTimeouts(req.Context(), Timeouts{Response: -1}))
		resp, err = tr.RoundTrip(req)
		require.NoError(t, err)
		readAll(t, resp)

		// So does a header, which no server sees.
		for _, v := range []string{"120", "2m", "off"} {
			req = chatReq(t, "m", false)
			req.Header.Set(HeaderResponseTimeout, v)
			req.Header.Set(HeaderTTFBTimeout, "1s")
			resp, err = tr.RoundTrip(req)
			require.NoError(t, err, v)
			readAll(t, resp)
			assert.Equal(t, v, req.Header.Get(HeaderResponseTimeout), "the caller's request is untouched")
		}
		n := rec.count()
		require.Equal(t, 5, n)
		for i := range n {
			assert.Empty(t, rec.header(i).Get(HeaderResponseTimeout), "stripped before sending")
			assert.Empty(t, rec.header(i).Get(HeaderTTFBTimeout), "stripped before sending")
		}

		// A header can also shorten it: the attempts time out.
		req = chatReq(t, "m", false)
		req.Header.Set(HeaderResponseTimeout, "1.5")
		start = time.Now()
		resp, err = tr.RoundTrip(req)
		require.Nil(t, resp)
		assert.ErrorIs(t, err, ErrResponseTimeout)
		assert.Equal(t, 3*1500*time.Millisecond, time.Since(start), "three attempts of 1.5 s")
		assert.Equal(t, "1.5", req.Header.Get(HeaderResponseTimeout), "the caller's request is untouched")
	})
}

func TestTimeoutHeaderThatDoesNotParseFailsTheCall(t *testing.T) {
	tr := newTr(t, WithTier(degrade.Tier{}, ep("x", "http://127.0.0.1:1", "")))
	req := chatReq(t, "m", false)
	req.Header.Set(HeaderTTFBTimeout, "soon")
	resp, err := tr.RoundTrip(req)
	require.Nil(t, resp)
	assert.ErrorContains(t, err, HeaderTTFBTimeout)
	assert.ErrorContains(t, err, `"soon"`)
}

func TestStreamDetectionFromAcceptHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		silent := &memRec{h: func(w http.ResponseWriter, r *http.Request, _ int) {
			select {
			case <-time.After(30 * time.Second):
			case <-r.Context().Done():
			}
		}}
		ok := &memRec{h: okJSON}
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("silent", mt.add(silent), ""), ep("ok", mt.add(ok), "")),
			WithTTFBTimeout(5*time.Second))
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://llm.invalid/v1/events", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/event-stream")
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 5*time.Second, time.Since(start), "Accept: text/event-stream marks a stream")
		assert.Equal(t, "ok", resp.Header.Get(HeaderEndpoint))
		_ = resp.Body.Close()
	})
}

// BenchmarkRoundTripSturdyTimeouts is BenchmarkRoundTripSturdy with both
// timeouts set: what deciding whether the call streams (its body scanned
// for "stream") and arming the timer add.
func BenchmarkRoundTripSturdyTimeouts(b *testing.B) {
	tr, err := NewTransport(stubTransport{}, WithTier(degrade.Tier{Name: "primary", Model: "m"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
		URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
	), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil)),
		WithTTFBTimeout(10*time.Second), WithResponseTimeout(5*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	runBench(b, tr)
}
