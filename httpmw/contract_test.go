package httpmw

import (
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
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/fakellm"
	"github.com/sturdyai/sturdy/ratelimit"
)

// The net/http.RoundTripper contract, one test per rule.

func TestContractConcurrentUse(t *testing.T) {
	a := startLLM(t, fakellm.Config{Name: "a", ErrorRate: 0.3, Seed: 1})
	b := startLLM(t, fakellm.Config{Name: "b", Seed: 2})
	tr := newTr(t, WithTier(Tier{Endpoints: []Endpoint{ep("a", a.URL(), ""), ep("b", b.URL(), "")}}),
		WithHedge(hedge.Config{Delay: 5 * time.Millisecond, BudgetRatio: -1}))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			for range 4 {
				resp, err := tr.RoundTrip(chatReq(t, "m", i%2 == 0))
				if err != nil {
					errs <- err
					return
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					errs <- err
				}
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
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
			tr := newTr(t, WithTier(Tier{Endpoints: tc.eps, Limit: tc.lim}))
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
		WithTier(Tier{Name: "p", Endpoints: []Endpoint{ep("down", down.URL+"/prefix", "k1")}}),
		WithTier(Tier{Name: "f", Model: "small", Endpoints: []Endpoint{ep("fb", fb.URL, "k2")}}))
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
			return newMemTr(t, mt, WithTier(Tier{Endpoints: []Endpoint{ep("ok", ok, "")}}))
		}, `{"model":"m"}`},
		{"limiter refusal", func(t *testing.T, mt *memTransport, ok, _ string) *Transport {
			tr := newMemTr(t, mt, WithTier(Tier{Endpoints: []Endpoint{ep("ok", ok, "")}, Limit: ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}}))
			resp, err := tr.RoundTrip(chatReq(t, "m", false)) // spends the burst
			require.NoError(t, err)
			readAll(t, resp)
			return tr
		}, `{"model":"m"}`},
		{"closed transport", func(t *testing.T, mt *memTransport, ok, _ string) *Transport {
			tr := newMemTr(t, mt, WithTier(Tier{Endpoints: []Endpoint{ep("ok", ok, "")}}))
			require.NoError(t, tr.Close())
			return tr
		}, `{"model":"m"}`},
		{"rewrite refused: malformed JSON", func(t *testing.T, mt *memTransport, ok, down string) *Transport {
			return newMemTr(t, mt, WithTier(Tier{Endpoints: []Endpoint{ep("down", down, "")}}),
				WithTier(Tier{Model: "small", Endpoints: []Endpoint{ep("ok", ok, "")}}))
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
		tr := newTr(t, WithTier(Tier{Endpoints: []Endpoint{ep("down", down.URL, ""), ep("ok", ok.URL, "")}}))
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
	down := newRecorder(t, status(503))
	ok := newRecorder(t, okJSON)
	tr := newTr(t, WithMaxBodyBuffer(16),
		WithTier(Tier{Endpoints: []Endpoint{ep("down", down.URL, ""), ep("ok", ok.URL, "")}}),
		WithHedge(hedge.Config{Delay: time.Millisecond, BudgetRatio: -1}))
	payload := chatBody("m", false)
	req, err := http.NewRequest(http.MethodPost, chatPath, io.NopCloser(bytes.NewReader(payload)))
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	body := readAll(t, resp)
	assert.Equal(t, 503, resp.StatusCode, body)
	assert.Equal(t, 1, down.count()+ok.count(), "sent once")
	assert.Equal(t, payload, down.body(0), "the whole body went out")
	assert.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
}

func TestContractDiscardedResponsesDrainedAndConnectionReused(t *testing.T) {
	down := newRecorder(t, status(503))
	ok := newRecorder(t, okJSON)
	tr := newTr(t, WithTier(Tier{Endpoints: []Endpoint{ep("down", down.URL, ""), ep("ok", ok.URL, "")}}))
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
		mt := newMemTransport(t)
		slow, slowURL := memLLM(t, mt, fakellm.Config{Name: "slow", Latency: fakellm.Latency{Fixed: 300 * time.Millisecond}})
		_, fastURL := memLLM(t, mt, fakellm.Config{Name: "fast"})
		tr := newMemTr(t, mt, WithTier(Tier{Endpoints: []Endpoint{ep("slow", slowURL, ""), ep("fast", fastURL, "")}}),
			WithHedge(hedge.Config{Delay: 20 * time.Millisecond, BudgetRatio: -1}))
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

func TestContractWinnerContextLivesUntilBodyClosed(t *testing.T) {
	srv := startLLM(t, fakellm.Config{Name: "s", ChunkDelay: 20 * time.Millisecond})
	// With hedging the winner runs on its own context, which the call
	// must keep alive until the body is closed.
	tr := newTr(t, WithTier(Tier{Endpoints: []Endpoint{ep("s", srv.URL(), "")}}),
		WithHedge(hedge.Config{Delay: time.Second, BudgetRatio: -1}), WithTTFBTimeout(time.Second))
	resp, err := tr.RoundTrip(chatReq(t, "m", true))
	require.NoError(t, err)
	body := readAll(t, resp) // several chunks, 20ms apart, after RoundTrip returned
	assert.Contains(t, body, "data: [DONE]")
}

func TestContractCallerCancelIsCanceled(t *testing.T) {
	srv := startLLM(t, fakellm.Config{Name: "s", Latency: fakellm.Latency{Fixed: time.Second}})
	tr := newTr(t, WithTier(Tier{Endpoints: []Endpoint{ep("s", srv.URL(), "")}}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	resp, err := tr.RoundTrip(chatReq(t, "m", false).WithContext(ctx))
	require.Nil(t, resp)
	assert.True(t, errors.Is(err, sturdy.ErrCanceled), "%v", err)
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
	tr, err := NewTransport(nilBase{}, append(testOpts(), WithTier(Tier{Endpoints: []Endpoint{ep("a", "http://127.0.0.1:1", "key-a")}}))...)
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
	assert.ErrorIs(t, p.Probe(context.Background(), tr.byName["a"].sep), errNoResponse)
}
