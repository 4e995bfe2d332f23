package httpmw

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/ratelimit"
)

// A later tier that serves the primary's model under another deployment
// says so with SameModel.
func TestSameModelFallbackIsAccepted(t *testing.T) {
	tr, err := NewTransport(nil, WithTier(degrade.Tier{Model: "gpt-4o"}, URL("a", "http://127.0.0.1:1", nil)),
		WithTier(degrade.Tier{SameModel: true}, URL("b", "http://127.0.0.1:2", nil)))
	require.NoError(t, err)
	require.NoError(t, tr.Close())
}

// An endpoint's Query is set on every request, replacing the caller's
// values of its keys and keeping the others.
func TestEndpointQuery(t *testing.T) {
	mt := newMemTransport(t)
	rec := &memRec{h: okJSON}
	u := mt.add(rec)
	azure := Endpoint{Endpoint: sturdy.Endpoint{Name: "azure", Address: u + "/openai"}, Query: url.Values{"api-version": {"2024-10-21"}}}
	tr := newMemTr(t, mt, WithTier(degrade.Tier{}, azure))
	for _, target := range []string{"http://llm/v1/chat/completions", "http://llm/v1/chat/completions?api-version=old&x=1"} {
		req, err := http.NewRequest(http.MethodPost, target, nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		readAll(t, resp)
	}
	require.Equal(t, 2, rec.count())
	assert.Equal(t, "/openai/v1/chat/completions?api-version=2024-10-21", rec.path(0))
	assert.Equal(t, "/openai/v1/chat/completions?api-version=2024-10-21&x=1", rec.path(1))
}

func TestProbeUp(t *testing.T) {
	for code, up := range map[int]bool{200: true, 204: true, 301: true, 401: true, 403: true, 404: true, 408: false, 429: false, 500: false, 502: false, 503: false} {
		assert.Equal(t, up, probeUp(code), "status %d", code)
	}
}

// Probes on an OpenAI-like endpoint that has no /health (404) never eject
// it; an endpoint that answers 503 to its probe is ejected; a NoProbe
// endpoint is never probed, and one with its own ProbePath is probed
// there.
func TestProbesPerEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		notFound := &memRec{h: func(w http.ResponseWriter, r *http.Request, _ int) {
			if r.URL.Path == "/v1/chat/completions" {
				okJSON(w, r, 0)
				return
			}
			w.WriteHeader(http.StatusNotFound)
		}}
		down := &memRec{h: func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusServiceUnavailable) }}
		quiet := &memRec{h: okJSON}
		own := &memRec{h: okJSON}
		tr, err := NewTransport(mt,
			WithTier(degrade.Tier{},
				URL("openai", mt.add(notFound), nil),
				URL("down", mt.add(down), nil),
				Endpoint{Endpoint: sturdy.Endpoint{Name: "quiet", Address: mt.add(quiet)}, NoProbe: true},
				Endpoint{Endpoint: sturdy.Endpoint{Name: "own", Address: mt.add(own)}, ProbePath: "/v1/models"}),
			WithHealth(health.Config{ConsecutiveFailures: 3}),
			WithProbes(health.ProbeConfig{Interval: 100 * time.Millisecond, Jitter: -1}))
		require.NoError(t, err)
		defer tr.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		assert.GreaterOrEqual(t, notFound.count(), 10, "probed")
		assert.Equal(t, health.Healthy, tr.State("openai"), "a 404 to the probe is a server that is up")
		assert.NotEqual(t, health.Healthy, tr.State("down"), "a 503 to the probe is a server that is not")
		assert.Zero(t, quiet.count(), "NoProbe")
		require.Positive(t, own.count())
		assert.Equal(t, "/v1/models", own.path(0))
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		readAll(t, resp)
	})
}

// Deployments: each endpoint receives the model under its own name (an
// Azure deployment, a vLLM served-model-name), in tier 0 too; an endpoint
// without one gets the tier's rewrite (none in tier 0).
func TestEndpointDeploymentNames(t *testing.T) {
	mt := newMemTransport(t)
	recs := map[string]*memRec{}
	ep := func(name, model string) Endpoint {
		recs[name] = &memRec{h: okJSON}
		return Endpoint{Endpoint: sturdy.Endpoint{Name: name, Address: mt.add(recs[name]), Model: model}}
	}
	tr := newMemTr(t, mt,
		WithTier(degrade.Tier{Name: "primary", Model: "gpt-4o"}, ep("azure", "my-gpt4o-deployment"), ep("openai", "")),
		WithTier(degrade.Tier{Name: "small", Model: "gpt-4o-mini"}, ep("vllm", "qwen")))
	for range 4 { // round-robin over both primaries, twice
		resp, err := tr.RoundTrip(chatReq(t, "gpt-4o", false))
		require.NoError(t, err)
		readAll(t, resp)
	}
	require.Equal(t, 2, recs["azure"].count())
	require.Equal(t, 2, recs["openai"].count())
	assert.Contains(t, string(recs["azure"].body(0)), `"model":"my-gpt4o-deployment"`)
	assert.Contains(t, string(recs["openai"].body(0)), `"model":"gpt-4o"`)
	assert.NotContains(t, string(recs["azure"].body(1)), `"gpt-4o"`)

	// Take the primary tier out: the fallback's endpoint gets its own name.
	down := &memRec{h: func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusServiceUnavailable) }}
	recs["azure"].h, recs["openai"].h = down.h, down.h
	resp, err := tr.RoundTrip(chatReq(t, "gpt-4o", false))
	require.NoError(t, err)
	readAll(t, resp)
	require.Equal(t, 1, recs["vllm"].count())
	assert.Contains(t, string(recs["vllm"].body(0)), `"model":"qwen"`)
}

// At run time, a 404 that one endpoint of a tier answers to a request the
// others serve is that endpoint's fault: the call is served elsewhere and
// the endpoint, failing so, is ejected. A 404 every endpoint answers is
// the caller's: it comes back as is and ejects nothing.
func TestMisroutedEndpointIsEjected(t *testing.T) {
	mt := newMemTransport(t)
	wrongPath := &memRec{h: status(http.StatusNotFound)} // e.g. a base path the request path duplicates
	good := &memRec{h: okJSON}
	tr, err := NewTransport(mt, append(testOpts(),
		WithHealth(health.Config{ConsecutiveFailures: 2, FailureRate: -1}),
		WithTier(degrade.Tier{}, URL("wrong", mt.add(wrongPath), nil), URL("good", mt.add(good), nil)))...)
	require.NoError(t, err)
	defer tr.Close()
	for i := range 6 {
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, "call %d", i)
		assert.Equal(t, "good", resp.Header.Get(HeaderEndpoint))
	}
	assert.Equal(t, 2, wrongPath.count(), "tried until ejected")
	assert.Equal(t, health.Ejected, tr.State("wrong"))

	// Every endpoint answers 404: the caller's fault, as is.
	mt2 := newMemTransport(t)
	a, b := &memRec{h: status(http.StatusNotFound)}, &memRec{h: status(http.StatusNotFound)}
	tr2, err := NewTransport(mt2, append(testOpts(), WithHealth(health.Config{ConsecutiveFailures: 1, FailureRate: -1}),
		WithTier(degrade.Tier{}, URL("a", mt2.add(a), nil), URL("b", mt2.add(b), nil)))...)
	require.NoError(t, err)
	defer tr2.Close()
	resp, err := tr2.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, 2, a.count()+b.count(), "each endpoint asked once")
	assert.Equal(t, health.Healthy, tr2.State("a"))
	assert.Equal(t, health.Healthy, tr2.State("b"))
}

// An endpoint's own Limit (a provider key's quota) passes it over for the
// others of its tier once spent, and then the tier for the fallback: no
// request beyond the quota goes out.
func TestEndpointLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		capped, other, fb := &memRec{h: okJSON}, &memRec{h: okJSON}, &memRec{h: okJSON}
		quota := Endpoint{Endpoint: sturdy.Endpoint{Name: "capped", Address: mt.add(capped)}, Limit: ratelimit.Limit{RequestsPerSecond: 2, Burst: 2}}
		tr := newMemTr(t, mt, WithTier(degrade.Tier{Model: "m"}, quota, URL("other", mt.add(other), nil)),
			WithTier(degrade.Tier{Model: "small"}, URL("fb", mt.add(fb), nil)))
		for range 10 {
			resp, err := tr.RoundTrip(chatReq(t, "m", false))
			require.NoError(t, err)
			readAll(t, resp)
		}
		assert.Equal(t, 2, capped.count(), "the quota's burst, and no more within the second")
		assert.Equal(t, 8, other.count(), "the rest on the other endpoint of the tier")
		assert.Zero(t, fb.count())
		time.Sleep(time.Second)
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		readAll(t, resp)
		assert.Equal(t, 11, capped.count()+other.count())
	})
}

// An endpoint's token quota is charged with the response's usage: okJSON
// answers report 7 tokens each, so a 30-token quota serves 4 calls, then
// the endpoint is passed over until the quota refills.
func TestEndpointTokenLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		capped, other := &memRec{h: okJSON}, &memRec{h: okJSON}
		quota := Endpoint{Endpoint: sturdy.Endpoint{Name: "capped", Address: mt.add(capped)}, Limit: ratelimit.Limit{TokensPerMinute: 30, TokenBurst: 30}}
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, quota, URL("other", mt.add(other), nil)))
		call := func() {
			req, err := http.NewRequest(http.MethodPost, chatPath, strings.NewReader(`{"model":"m","x":1}`)) // estimated 4 tokens
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			readAll(t, resp)
		}
		for range 12 {
			call()
		}
		assert.Equal(t, 4, capped.count(), "4 × 7 tokens of 30: a fifth, estimated at 4, does not fit the 2 left")
		assert.Equal(t, 8, other.count())
		time.Sleep(time.Minute)
		call()
		call()
		assert.Equal(t, 5, capped.count(), "refilled after a minute")
	})
}
