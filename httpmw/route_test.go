package httpmw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/pipeline"
	"github.com/sturdyai/sturdy/internal/telemetry"
	"github.com/sturdyai/sturdy/ratelimit"
)

// captureBase is a base RoundTripper that keeps every request it is given
// and answers 200 with a small JSON body, or with body if set.
type captureBase struct {
	mu   sync.Mutex
	reqs []*http.Request
	body func() io.ReadCloser
}

func (c *captureBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	b := io.NopCloser(strings.NewReader(`{"ok":true}`))
	if c.body != nil {
		b = c.body()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: b, ContentLength: -1, Request: req}, nil
}

func (c *captureBase) last() *http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[len(c.reqs)-1]
}

func newCaptureTr(t *testing.T, base *captureBase, opts ...Option) *Transport {
	t.Helper()
	// captureBase keeps the requests it was sent, to be read after their
	// response bodies were closed: what WithoutRequestReuse is for
	// (request reuse has its own tests, reuse_test.go).
	tr, err := NewTransport(base, append(append(testOpts(), WithoutRequestReuse()), opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func mapID(h http.Header) uintptr { return reflect.ValueOf(h).Pointer() }

func TestContractCallerHeaderAndItsValuesUntouchedWhenCredentialsAreReplaced(t *testing.T) {
	base := &captureBase{}
	tr := newCaptureTr(t, base, WithTier(degrade.Tier{}, ep("a", "http://127.0.0.1:1/prefix", "key-a")))
	req := chatReq(t, "m", false)
	req.Header.Set("Api-Key", "caller-api-key")
	req.Header["X-Multi"] = make([]string, 1, 4) // room to append into
	req.Header["X-Multi"][0] = "one"
	want := req.Header.Clone()
	backing := map[string]*string{}
	for k, vs := range req.Header {
		backing[k] = &vs[0]
	}
	wantURL := *req.URL

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)

	assert.Equal(t, want, req.Header)
	for k, vs := range req.Header {
		assert.Same(t, backing[k], &vs[0], "the value slice of %s is the caller's own", k)
	}
	assert.Equal(t, wantURL, *req.URL)
	out := base.last()
	assert.NotEqual(t, mapID(req.Header), mapID(out.Header), "the attempt has its own header map")
	assert.Equal(t, []string{"Bearer key-a"}, out.Header["Authorization"])
	assert.NotContains(t, out.Header, "Api-Key")
	assert.Equal(t, []string{"one"}, out.Header["X-Multi"])
	assert.Equal(t, "application/json", out.Header.Get("Content-Type"))
	assert.NotSame(t, req.URL, out.URL)
	assert.Equal(t, "/prefix/v1/chat/completions", out.URL.Path)
	assert.Equal(t, "127.0.0.1:1", out.URL.Host)
	assert.Empty(t, out.Host)
	assert.Same(t, req, resp.Request)
}

func TestAttemptRequestSharesTheCallerHeaderOnlyWhenNothingChanges(t *testing.T) {
	type key struct{}
	cases := []struct {
		name      string
		endpoint  Endpoint
		caller    http.Header
		opts      []Option
		shared    bool
		wantAuthz []string
	}{
		{"no credentials anywhere", ep("a", "http://127.0.0.1:1", ""), http.Header{"X-Custom": {"1"}}, nil, true, nil},
		{"no credentials anywhere, hedged", ep("a", "http://127.0.0.1:1", ""), http.Header{"X-Custom": {"1"}}, []Option{WithHedge(hedge.Config{Delay: time.Hour})}, false, nil},
		{"caller credentials passed through", ep("a", "http://127.0.0.1:1", ""), http.Header{"Authorization": {"Bearer caller"}}, []Option{WithCallerCredentials()}, true, []string{"Bearer caller"}},
		{"caller credentials removed", ep("a", "http://127.0.0.1:1", ""), http.Header{"Authorization": {"Bearer caller"}}, nil, false, nil},
		{"endpoint header added", ep("a", "http://127.0.0.1:1", "k"), http.Header{"X-Custom": {"1"}}, nil, false, []string{"Bearer k"}},
		{"endpoint credential replaces the passed one", ep("a", "http://127.0.0.1:1", "k"), http.Header{"Authorization": {"Bearer caller"}}, []Option{WithCallerCredentials()}, false, []string{"Bearer k"}},
		{"nil caller header", ep("a", "http://127.0.0.1:1", "k"), nil, nil, false, []string{"Bearer k"}},
		{"nil caller header, nothing to add", ep("a", "http://127.0.0.1:1", ""), nil, nil, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := &captureBase{}
			tr := newCaptureTr(t, base, append(tc.opts, WithTier(degrade.Tier{}, tc.endpoint))...)
			ctx := context.WithValue(context.Background(), key{}, "v")
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://x/v1/models", nil)
			require.NoError(t, err)
			req.Header = tc.caller
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			readAll(t, resp)
			out := base.last()
			require.NotNil(t, out.Header, "http.Transport refuses a nil header")
			if tc.caller != nil {
				assert.Equal(t, tc.shared, mapID(tc.caller) == mapID(out.Header))
			}
			assert.Equal(t, tc.wantAuthz, out.Header["Authorization"])
			assert.Equal(t, "v", out.Context().Value(key{}), "the attempt's context derives from the caller's")
			assert.NotSame(t, req, out)
		})
	}
}

func TestRoutedURLJoinsThePathAndIsRoutedOnceForTheSameCallerURL(t *testing.T) {
	e, err := newEndpoint(URL("a", "http://127.0.0.1:1/openai/deployments/x", nil), 0)
	require.NoError(t, err)
	long := "/v1/" + strings.Repeat("y", 200)
	for _, p := range []string{"/v1/chat/completions", long, "", "v1"} {
		req, err := http.NewRequest(http.MethodGet, "http://user:secret@x", nil)
		require.NoError(t, err)
		req.URL.Path = p
		var r http.Request
		var u url.URL
		out := e.request(&r, &u, context.Background(), req, false, true, nil)
		want := "/openai/deployments/x" + p
		if p == "" || p[0] != '/' {
			want = "/openai/deployments/x/" + p
		}
		assert.Equal(t, want, out.URL.Path)
		assert.Equal(t, "127.0.0.1:1", out.URL.Host)
		assert.Nil(t, out.URL.User)
		assert.Equal(t, p, req.URL.Path, "the caller's URL is untouched")
		assert.Equal(t, "x", req.URL.Host, "the caller's URL is untouched")
		assert.Same(t, &u, out.URL, "the attempt's own URL")
		// The same caller URL again (another request's copy of it) is
		// routed by the endpoint once: the same routed URL, copied.
		again := *req.URL
		assert.Same(t, e.routed(req.URL), e.routed(&again))
		var r2 http.Request
		var u2 url.URL
		out2 := e.request(&r2, &u2, context.Background(), &http.Request{URL: &again, Header: http.Header{}}, false, true, nil)
		assert.Equal(t, *out.URL, *out2.URL)
		// A base that breaks the contract and writes its request's URL
		// changes neither the endpoint's routed URL nor later attempts'.
		out2.URL.Host, out2.URL.Path = "evil.invalid", "/x"
		var r3 http.Request
		var u3 url.URL
		out3 := e.request(&r3, &u3, context.Background(), req, false, true, nil)
		assert.Equal(t, "127.0.0.1:1", out3.URL.Host)
		assert.Equal(t, want, out3.URL.Path)
		// Another caller URL, even in the same slot, does not disturb the
		// first attempt's.
		for _, other := range []string{"/other", p + "?", p + "x"} {
			req.URL.Path = other
			_ = e.request(&r2, &u2, context.Background(), req, false, true, nil)
			assert.Equal(t, want, out.URL.Path)
		}
	}
	// The key keeps no user info of the caller's.
	for i := range e.urls {
		if rt := e.urls[i].Load(); rt != nil {
			assert.Nil(t, rt.from.User)
			assert.Empty(t, rt.from.Host)
		}
	}
}

// Two caller URLs that differ only in a field routing keeps never share a
// routed URL, whichever slot they land in.
func TestRoutedURLTellsCallerURLsApart(t *testing.T) {
	e, err := newEndpoint(URL("a", "http://127.0.0.1:1/openai", nil), 0)
	require.NoError(t, err)
	base := url.URL{Scheme: "http", Host: "x", Path: "/v1/chat/completions"}
	variants := []func(u *url.URL){
		func(u *url.URL) {},
		func(u *url.URL) { u.RawQuery = "a=1" },
		func(u *url.URL) { u.RawQuery = "a=2" },
		func(u *url.URL) { u.Path, u.RawPath = "/v1/a b", "/v1/a%20b" },
		func(u *url.URL) { u.Fragment = "f" },
		func(u *url.URL) { u.ForceQuery = true },
		func(u *url.URL) { u.Path = "/v1/chat/completionz" },
	}
	for range 3 {
		for i, v := range variants {
			u := base
			v(&u)
			got := e.routed(&u)
			want := u
			e.routeURL(&want)
			assert.Equal(t, want, *got, "variant %d", i)
		}
	}
}

// errAfterClose is a response body that fails every Read once closed.
type errAfterClose struct {
	r      io.Reader
	closed bool
}

func (b *errAfterClose) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read on closed body")
	}
	return b.r.Read(p)
}

func (b *errAfterClose) Close() error { b.closed = true; return nil }

func TestBodyCloseTwiceAndReadAfterCloseAreSafe(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	base := &captureBase{body: func() io.ReadCloser {
		return &errAfterClose{r: strings.NewReader(`{"choices":[` + strings.Repeat(" ", 500) + `]}`)}
	}}
	// One failure would eject the endpoint: a read error after Close must
	// not count as one.
	tr := newCaptureTr(t, base, WithTracerProvider(tp),
		WithHealth(health.Config{ConsecutiveFailures: 1, FailureRate: -1}),
		WithTier(degrade.Tier{}, ep("a", "http://127.0.0.1:1", "")))
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	buf := make([]byte, 16)
	_, err = resp.Body.Read(buf)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, resp.Body.Close())
	// What the attempt read ahead is still handed out; then the closed
	// body's error.
	for range 20 {
		var n int
		if n, err = resp.Body.Read(buf); err != nil {
			break
		}
		assert.Positive(t, n)
	}
	assert.EqualError(t, err, "read on closed body")
	calls := 0
	for _, s := range sr.Ended() {
		if s.Name() == telemetry.SpanCall {
			calls++
		}
	}
	assert.Equal(t, 1, calls, "the call span ends once")
	assert.Equal(t, health.Healthy, tr.State("a"))
}

func TestAttemptRequestAllocatesOnlyTheHeaderItChanges(t *testing.T) {
	plain, err := newEndpoint(URL("a", "http://127.0.0.1:1/openai", nil), 0)
	require.NoError(t, err)
	keyed, err := newEndpoint(URL("b", "http://127.0.0.1:1/openai", http.Header{"Api-Key": {"k"}}), 0)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://x/v1/chat/completions", nil)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	o, u := new(http.Request), new(url.URL)
	ctx := context.Background()
	// The routed URL is the endpoint's (made by the first request) and
	// copied, the caller's header is shared.
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = plain.request(o, u, ctx, req, false, true, nil) }))
	// Only the header map (a map and its group).
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() { _ = keyed.request(o, u, ctx, req, false, true, nil) }), 2.0)
}

// A credential the caller set straight into the header map, under a key
// that is not canonical, is as much a credential to the server: it is
// dropped like the canonical one, and never sent beside the endpoint's.
func TestCallerCredentialUnderNonCanonicalKeyIsDropped(t *testing.T) {
	for _, tt := range []struct {
		name string
		ep   Endpoint
		want http.Header
	}{
		{"endpoint sets its own key", ep("a", "http://127.0.0.1:1", "key-a"), http.Header{"Authorization": {"Bearer key-a"}}},
		{"endpoint sets no header", ep("a", "http://127.0.0.1:1", ""), http.Header{}},
	} {
		// One, two or three stray keys, under any spelling.
		for n := 1; n <= 3; n++ {
			t.Run(fmt.Sprintf("%s/%d keys", tt.name, n), func(t *testing.T) {
				base := &captureBase{}
				tr := newCaptureTr(t, base, WithTier(degrade.Tier{}, tt.ep))
				req := chatReq(t, "m", false)
				req.Header.Del("Authorization")
				for _, k := range []string{"authorization", "X-API-KEY", "x-goog-api-key"}[:n] {
					req.Header[k] = []string{"Bearer caller-key"}
				}
				want := req.Header.Clone()

				resp, err := tr.RoundTrip(req)
				require.NoError(t, err)
				readAll(t, resp)

				got := base.last().Header.Clone()
				delete(got, "Content-Type")
				assert.Equal(t, tt.want, got)
				assert.Equal(t, want, req.Header, "the caller's header changed")
			})
		}
	}
}

func TestIsCallerCredential(t *testing.T) {
	for k, want := range map[string]bool{
		"authorization": true, "AUTHORIZATION": true, "api-key": true, "x-api-key": true, "X-GOOG-API-KEY": true,
		"Authorization": true, "Api-Key": true, "X-Api-Key": true, "X-Goog-Api-Key": true,
		"content-type": false, "Authorizatio": false, "x-api-keys": false,
	} {
		assert.Equal(t, want, isCallerCredential(k), k)
	}
	// Every name the pipeline lists, in any case; nothing else of its
	// length.
	for _, c := range pipeline.CallerCredentials {
		for _, k := range []string{c, strings.ToLower(c), strings.ToUpper(c)} {
			assert.True(t, isCallerCredential(k), k)
		}
		assert.False(t, isCallerCredential(strings.Repeat("x", len(c))))
	}
}

// attemptState (the request an attempt sends, its response body and its
// own context) must stay within the 512-byte size class, the largest
// whose objects need no malloc header: each attempt allocates and zeroes
// it, and the garbage collector scans it, at about 0.6 ns a byte here
// (BenchmarkRoundTripOverhead).
func TestAttemptStateSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(attemptState{}); got > 512 {
		t.Fatalf("attemptState takes %d bytes; it must fit the 512-byte size class", got)
	}
	if got := unsafe.Sizeof(respBody{}); got > 80 {
		t.Fatalf("respBody takes %d bytes; a plain answer's must fit in 80", got)
	}
}

// net/http lets Close abort a Read on another goroutine. With token
// accounting on, the body's usage scanner is written by Read and read by
// the release Close runs: run under -race, this fails if they are not
// ordered.
func TestContractCloseDuringReadIsSafe(t *testing.T) {
	for range 20 {
		pr, pw := io.Pipe()
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			chunk := []byte(`{"choices":[{"message":{"content":"` + strings.Repeat("x", 200) + `"}}],"usage":{"total_tokens":12},`)
			for {
				if _, err := pw.Write(chunk); err != nil {
					return // the body was closed
				}
			}
		}()
		base := &captureBase{body: func() io.ReadCloser { return pr }}
		tr := newCaptureTr(t, base, WithTier(degrade.Tier{Limit: ratelimit.Limit{TokensPerMinute: 1e9}}, ep("a", "http://127.0.0.1:1", "key-a")))
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		firstRead := make(chan struct{})
		readerDone := make(chan error, 1)
		go func() {
			buf := make([]byte, 64)
			for n := 1; ; n++ {
				_, err := resp.Body.Read(buf)
				if n == 5 || (err != nil && n < 5) {
					close(firstRead) // and go on reading while Close runs
				}
				if err != nil {
					readerDone <- err
					return
				}
			}
		}()
		<-firstRead
		require.NoError(t, resp.Body.Close())
		assert.Error(t, <-readerDone, "a Read after Close must fail")
		<-writerDone
		require.NoError(t, tr.Close())
	}
}

// abortingBody is a response body that gives its first bytes at once and
// then waits in Read until Close, whose Close returns only once that Read
// has returned its error, as an HTTP/2 body's does: the aborted Read
// settles before Close goes on.
type abortingBody struct {
	first    bool // the first bytes were read
	closed   chan struct{}
	readDone chan struct{}
	reading  chan struct{}
}

func (b *abortingBody) Read(p []byte) (int, error) {
	if !b.first {
		b.first = true
		return copy(p, `{"choices":[`), nil
	}
	close(b.reading)
	<-b.closed
	defer close(b.readDone)
	return 0, errors.New("http2: response body closed")
}

func (b *abortingBody) Close() error {
	close(b.closed)
	<-b.readDone
	return nil
}

func TestCloseDuringReadIsNotTheEndpointsFailure(t *testing.T) {
	b := &abortingBody{closed: make(chan struct{}), readDone: make(chan struct{}), reading: make(chan struct{})}
	base := &captureBase{body: func() io.ReadCloser { return b }}
	tr := newCaptureTr(t, base, WithTier(degrade.Tier{}, ep("a", "http://127.0.0.1:1", "")),
		WithHealth(health.Config{ConsecutiveFailures: 1}))
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				readErr <- err
				return
			}
		}
	}()
	<-b.reading
	require.NoError(t, resp.Body.Close())
	assert.Error(t, <-readErr)
	assert.Equal(t, health.Healthy, tr.State("a"), "the caller stopped reading; the endpoint did not fail")
}
