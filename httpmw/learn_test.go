package httpmw_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/internal/chain"
)

// A provider that says, on a successful answer, that its request quota is
// spent is not sent the next call: it goes to the fallback tier, before
// any 429.
func TestRateLimitHeadersPaceTheEndpointBeforeA429(t *testing.T) {
	var primaryCalls atomic.Int32
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		primaryCalls.Add(1)
		h := w.Header()
		h.Set("X-Ratelimit-Limit-Requests", "60")
		h.Set("X-Ratelimit-Remaining-Requests", "0")
		h.Set("X-Ratelimit-Reset-Requests", "60s") // one request a second, none left
		_, _ = io.WriteString(w, "primary")
	}))
	defer primary.Close()
	fallback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "fallback")
	}))
	defer fallback.Close()
	tr, err := httpmw.NewTransport(nil,
		httpmw.WithTier(degrade.Tier{Name: "big"}, httpmw.URL("p", primary.URL, nil)),
		httpmw.WithTier(degrade.Tier{Name: "small"}, httpmw.URL("f", fallback.URL, nil)))
	require.NoError(t, err)
	defer tr.Close()
	client := &http.Client{Transport: tr}
	var got []string
	for range 3 {
		resp, err := client.Post("http://llm/v1/chat/completions", "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, string(b))
	}
	assert.Equal(t, []string{"primary", "fallback", "fallback"}, got)
	assert.Equal(t, int32(1), primaryCalls.Load(), "no call reached the spent primary")
}

// Two deployments behind one API key share its quota: with one QuotaKey,
// a quota spent on one pauses both and the next calls fall back; without,
// the other deployment is tried first.
func TestQuotaKeySharesTheHeadersPace(t *testing.T) {
	for _, tc := range []struct {
		quotaKey string
		want     []string
	}{
		{"org-1", []string{"primary", "fallback", "fallback"}},
		{"", []string{"primary", "primary", "fallback"}},
	} {
		t.Run("QuotaKey="+tc.quotaKey, func(t *testing.T) {
			spent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				h := w.Header()
				h.Set("X-Ratelimit-Limit-Requests", "60")
				h.Set("X-Ratelimit-Remaining-Requests", "0")
				h.Set("X-Ratelimit-Reset-Requests", "60s")
				_, _ = io.WriteString(w, "primary")
			}))
			defer spent.Close()
			fallback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "fallback")
			}))
			defer fallback.Close()
			d1, d2 := httpmw.URL("d1", spent.URL, nil), httpmw.URL("d2", spent.URL, nil)
			d1.QuotaKey, d2.QuotaKey = tc.quotaKey, tc.quotaKey
			tr, err := httpmw.NewTransport(nil,
				httpmw.WithTier(degrade.Tier{Name: "big"}, d1, d2),
				httpmw.WithTier(degrade.Tier{Name: "small"}, httpmw.URL("f", fallback.URL, nil)))
			require.NoError(t, err)
			defer tr.Close()
			client := &http.Client{Transport: tr}
			var got []string
			for range 3 {
				resp, err := client.Post("http://llm/v1/chat/completions", "application/json", strings.NewReader(`{}`))
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = append(got, string(b))
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// spendsAfter answers every request 200 with a JSON body; from its
// answer quietFor+1 to host 127.0.0.1:1 on, those answers' headers say
// the request quota is spent.
type spendsAfter struct {
	quietFor int32
	answers  atomic.Int32
}

func (s *spendsAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if r.URL.Host == "127.0.0.1:1" && s.answers.Add(1) > s.quietFor {
		h.Set("X-Ratelimit-Limit-Requests", "60")
		h.Set("X-Ratelimit-Remaining-Requests", "0")
		h.Set("X-Ratelimit-Reset-Requests", "60s")
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(`{}`)), ContentLength: 2, Request: r}, nil
}

// A success's headers are read for rate-limit fields while the endpoint's
// last read ones had some, and otherwise on one success in
// chain.ListenSample: a server that starts to say its quota is spent is
// heard within that many answers, and the calls after that fall back.
func TestQuietEndpointsHeadersAreSampled(t *testing.T) {
	for _, quietFor := range []int32{0, 1, 10} {
		base := &spendsAfter{quietFor: quietFor}
		tr, err := httpmw.NewTransport(base,
			httpmw.WithTier(degrade.Tier{Name: "big"}, httpmw.URL("p", "http://127.0.0.1:1", nil)),
			httpmw.WithTier(degrade.Tier{Name: "small"}, httpmw.URL("f", "http://127.0.0.1:2", nil)))
		require.NoError(t, err)
		primary := 0
		for range 2 * chain.ListenSample {
			req, err := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(`{}`))
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.Header.Get(httpmw.HeaderEndpoint) == "p" {
				primary++
			}
		}
		tr.Close()
		// The first answer is read. If it was quiet, the next one read is
		// the first's ListenSample-th successor.
		want := 1
		if quietFor > 0 {
			want = 1 + chain.ListenSample
		}
		assert.Equal(t, want, primary, "calls the primary served, quiet for its first %d answers", quietFor)
	}
}
