package httpmw

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
)

// checkingBase checks every request it is sent when it is sent (a request
// may be recycled once its response body is closed), and remembers only
// their addresses. keepBody leaves request bodies open, to be closed by
// closeBodies.
type checkingBase struct {
	t        *testing.T
	keepBody bool

	mu     sync.Mutex
	sent   []*http.Request
	bodies []io.Closer
}

func (b *checkingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	caller := r.Header.Get("X-Caller")
	if got := r.Header.Get("Authorization"); got != "Bearer key-a" {
		b.t.Errorf("call %s: Authorization %q, want the endpoint's", caller, got)
	}
	if got := r.Header.Get("X-Only-" + caller); got != caller {
		b.t.Errorf("call %s: its own header is %q", caller, got)
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Only-") && k != "X-Only-"+caller {
			b.t.Errorf("call %s: carries %s, another call's header", caller, k)
		}
	}
	if v, ok := r.Header["x-api-key"]; ok {
		b.t.Errorf("call %s: the caller's credential went out: x-api-key %q", caller, v)
	}
	if r.URL.Host != "127.0.0.1:1" || r.URL.Path != "/v1/chat/completions" {
		b.t.Errorf("call %s: sent to %s", caller, r.URL)
	}
	if body, err := io.ReadAll(r.Body); err != nil || string(body) != `{"caller":"`+caller+`"}` {
		b.t.Errorf("call %s: body %q (%v)", caller, body, err)
	}
	b.mu.Lock()
	b.sent = append(b.sent, r)
	if b.keepBody {
		b.bodies = append(b.bodies, r.Body)
	} else {
		_ = r.Body.Close()
	}
	b.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), ContentLength: 11, Request: r}, nil
}

func (b *checkingBase) closeBodies() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.bodies {
		_ = c.Close()
	}
	b.bodies = nil
}

// reused counts the requests sent that had been sent before.
func (b *checkingBase) reused() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen, n := map[*http.Request]bool{}, 0
	for _, r := range b.sent {
		if seen[r] {
			n++
		}
		seen[r] = true
	}
	return n
}

func reuseTransport(t *testing.T, base http.RoundTripper, opts ...Option) *Transport {
	t.Helper()
	tr, err := NewTransport(base, append([]Option{WithTier(degrade.Tier{Name: "t"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer key-a"}}))}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// call sends one call as caller, with a header of its own and the
// caller's credential, and reads the answer; close says whether it closes
// the body after.
func reuseCall(t *testing.T, tr http.RoundTripper, caller string, close bool) {
	req, err := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(`{"caller":"`+caller+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer caller-key")
	req.Header["x-api-key"] = []string{"caller-key"} // not canonical: dropped all the same
	req.Header.Set("X-Caller", caller)
	req.Header.Set("X-Only-"+caller, caller)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, `{"ok":true}`, string(b))
	if close {
		require.NoError(t, resp.Body.Close())
	}
}

// Once a served response's body is closed and the base closed the request
// body, the request sturdy sent is sent again by a later call, refilled:
// nothing of the earlier call's header, URL or body stays. (sync.Pool may
// drop what it is given, and does at random under the race detector: the
// test asks for some reuse, not all.)
func TestSentRequestsAreReusedOnceTheBaseIsDone(t *testing.T) {
	base := &checkingBase{t: t}
	tr := reuseTransport(t, base)
	for i := range 40 {
		reuseCall(t, tr, fmt.Sprint(i), true)
	}
	assert.Positive(t, base.reused(), "no request was sent twice")
}

// A request is not reused while the base may still use it: before the
// caller closed the response body (a body read to its end is not closed),
// or while the base has not closed the request body (net/http's Transport
// may still be writing it after it returned the response).
func TestSentRequestsAreNotReusedBeforeTheBaseIsDone(t *testing.T) {
	t.Run("response body not closed", func(t *testing.T) {
		base := &checkingBase{t: t}
		tr := reuseTransport(t, base)
		for i := range 40 {
			reuseCall(t, tr, fmt.Sprint(i), false)
		}
		assert.Zero(t, base.reused())
	})
	t.Run("request body not closed", func(t *testing.T) {
		base := &checkingBase{t: t, keepBody: true}
		tr := reuseTransport(t, base)
		for i := range 40 {
			reuseCall(t, tr, fmt.Sprint(i), true)
		}
		base.closeBodies()
		assert.Zero(t, base.reused())
	})
	t.Run("no request body", func(t *testing.T) {
		// Nothing says when a base is done with a request without a body.
		var sent []*http.Request
		tr := reuseTransport(t, roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent = append(sent, r)
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2, Request: r}, nil
		}))
		for range 40 {
			req, err := http.NewRequest(http.MethodGet, "http://llm/v1/models", nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			require.NoError(t, resp.Body.Close())
		}
		for i := range sent {
			for j := range i {
				require.NotSame(t, sent[j], sent[i])
			}
		}
	})
	t.Run("WithoutRequestReuse", func(t *testing.T) {
		base := &checkingBase{t: t}
		tr := reuseTransport(t, base, WithoutRequestReuse())
		for i := range 40 {
			reuseCall(t, tr, fmt.Sprint(i), true)
		}
		assert.Zero(t, base.reused())
	})
}

// Concurrent calls recycling requests never see each other's: run it with
// -race.
func TestSentRequestsReusedConcurrently(t *testing.T) {
	base := &checkingBase{t: t}
	tr := reuseTransport(t, base)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				reuseCall(t, tr, fmt.Sprintf("%d-%d", g, i), true)
			}
		})
	}
	wg.Wait()
	assert.Positive(t, base.reused())
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
