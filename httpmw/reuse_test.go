package httpmw

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
)

// checkingBase checks every request it is sent when it is sent (its URL
// and header may be recycled once its response body is closed), and
// remembers only their addresses.
type checkingBase struct {
	t *testing.T

	mu   sync.Mutex
	urls []*url.URL
	hdrs []uintptr
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
	_ = r.Body.Close()
	b.mu.Lock()
	b.urls = append(b.urls, r.URL)
	b.hdrs = append(b.hdrs, mapID(r.Header))
	b.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), ContentLength: 11, Request: r}, nil
}

// reused counts the URLs and the header maps sent that had been sent
// before.
func (b *checkingBase) reused() (urls, hdrs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return repeats(b.urls), repeats(b.hdrs)
}

func repeats[T comparable](xs []T) int {
	seen, n := map[T]bool{}, 0
	for _, x := range xs {
		if seen[x] {
			n++
		}
		seen[x] = true
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

// Once a served response's body is closed, the URL and the header map
// the attempt sent are sent again by a later call, refilled: nothing of
// the earlier call's header, URL or credential stays. (sync.Pool may drop
// what it is given, and does at random under the race detector: the test
// asks for some reuse, not all.)
func TestSentRequestsAreReusedOnceTheBaseIsDone(t *testing.T) {
	base := &checkingBase{t: t}
	tr := reuseTransport(t, base)
	for i := range 40 {
		reuseCall(t, tr, fmt.Sprint(i), true)
	}
	urls, hdrs := base.reused()
	assert.Positive(t, urls, "no URL was sent twice")
	assert.Positive(t, hdrs, "no header map was sent twice")
}

// Nothing is reused before the caller closed the response body (a body
// read to its end is not closed), nor with WithoutRequestReuse.
func TestSentRequestsAreNotReusedBeforeTheBaseIsDone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close bool
		opts  []Option
	}{
		{"response body not closed", false, nil},
		{"WithoutRequestReuse", true, []Option{WithoutRequestReuse()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := &checkingBase{t: t}
			tr := reuseTransport(t, base, tc.opts...)
			for i := range 40 {
				reuseCall(t, tr, fmt.Sprint(i), tc.close)
			}
			urls, hdrs := base.reused()
			assert.Zero(t, urls)
			assert.Zero(t, hdrs)
		})
	}
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
	urls, hdrs := base.reused()
	assert.Positive(t, urls)
	assert.Positive(t, hdrs)
}
