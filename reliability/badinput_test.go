package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
)

// TestInvalidConfigurationIsRejectedNamingTheField feeds each adapter
// configurations that cannot work: each is refused by the constructor with
// a message that names the field (or option) to fix.
func TestInvalidConfigurationIsRejectedNamingTheField(t *testing.T) {
	leaks := leakCheck(t)
	ok := httpmw.URL("a", "http://127.0.0.1:1", nil)
	tier := func(mod func(*degrade.Tier)) httpmw.Option {
		tr := degrade.Tier{Name: "t"}
		mod(&tr)
		return httpmw.WithTier(tr, ok)
	}
	endpoints := func(eps ...httpmw.Endpoint) httpmw.Option { return httpmw.WithTier(degrade.Tier{Name: "t"}, eps...) }
	okTier := tier(func(*degrade.Tier) {})
	httpCases := []struct {
		name  string
		opts  []httpmw.Option
		field string
	}{
		{"no tier", nil, "WithTier"},
		{"tier without endpoints", []httpmw.Option{endpoints()}, "no endpoints"},
		{"duplicate tier name", []httpmw.Option{okTier, httpmw.WithTier(degrade.Tier{Name: "t"}, httpmw.URL("b", "http://127.0.0.1:2", nil))}, "tier name"},
		{"quality above 1", []httpmw.Option{tier(func(t *degrade.Tier) { t.Quality = 2 })}, "Quality"},
		{"negative context window", []httpmw.Option{tier(func(t *degrade.Tier) { t.ContextWindow = -1 })}, "ContextWindow"},
		{"negative tier timeout", []httpmw.Option{tier(func(t *degrade.Tier) { t.Timeout = -time.Second })}, "Timeout"},
		{"negative rate", []httpmw.Option{tier(func(t *degrade.Tier) { t.Limit = ratelimit.Limit{RequestsPerSecond: -1} })}, "Limit"},
		{"endpoint without name", []httpmw.Option{endpoints(httpmw.URL("", "http://127.0.0.1:1", nil))}, "Name"},
		{"duplicate endpoint name", []httpmw.Option{endpoints(ok, ok)}, "endpoint name"},
		{"negative weight", []httpmw.Option{endpoints(httpmw.Endpoint{Endpoint: sturdy.Endpoint{Name: "a", Address: ok.Address, Weight: -1}})}, "Weight"},
		{"URL scheme", []httpmw.Option{endpoints(httpmw.URL("a", "ftp://127.0.0.1", nil))}, "Address"},
		{"URL without host", []httpmw.Option{endpoints(httpmw.URL("a", "http://", nil))}, "Address"},
		{"URL with query", []httpmw.Option{endpoints(httpmw.URL("a", "http://h/?x=1", nil))}, "Address"},
		{"invalid header name", []httpmw.Option{endpoints(httpmw.URL("a", ok.Address, http.Header{"Bad Name": {"x"}}))}, "header"},
		{"header value with a line break", []httpmw.Option{endpoints(httpmw.URL("a", ok.Address, http.Header{"Api-Key": {"x\r\nInjected: 1"}}))}, "header"},
		{"negative body buffer", []httpmw.Option{okTier, httpmw.WithMaxBodyBuffer(-1)}, "WithMaxBodyBuffer"},
		{"negative TTFB", []httpmw.Option{okTier, httpmw.WithTTFBTimeout(-1)}, "WithTTFBTimeout"},
		{"negative max wait", []httpmw.Option{okTier, httpmw.WithMaxWait(-1)}, "WithMaxWait"},
		{"probe jitter 1", []httpmw.Option{okTier, httpmw.WithProbes(health.ProbeConfig{Jitter: 1})}, "Jitter"},
		{"negative probe interval", []httpmw.Option{okTier, httpmw.WithProbes(health.ProbeConfig{Interval: -1})}, "Interval"},
		{"failover MaxAttempts", []httpmw.Option{okTier, httpmw.WithFailover(failover.Config{MaxAttempts: -1})}, "MaxAttempts"},
		{"failover AttemptTimeoutQuantile", []httpmw.Option{okTier, httpmw.WithFailover(failover.Config{AttemptTimeoutQuantile: 1})}, "AttemptTimeoutQuantile"},
		{"failover BudgetWindow", []httpmw.Option{okTier, httpmw.WithFailover(failover.Config{BudgetWindow: -1})}, "BudgetWindow"},
		{"hedge Quantile", []httpmw.Option{okTier, httpmw.WithHedge(hedge.Config{Quantile: 1})}, "Quantile"},
		{"hedge Delay", []httpmw.Option{okTier, httpmw.WithHedge(hedge.Config{Delay: -1})}, "Delay"},
		{"hedge MaxHedges", []httpmw.Option{okTier, httpmw.WithHedge(hedge.Config{MaxHedges: -1})}, "MaxHedges"},
		{"health FailureRate", []httpmw.Option{okTier, httpmw.WithHealth(health.Config{FailureRate: 2})}, "FailureRate"},
		{"health MaxEjection", []httpmw.Option{okTier, httpmw.WithHealth(health.Config{BaseEjection: time.Minute, MaxEjection: time.Second})}, "MaxEjection"},
		{"balancer Decay", []httpmw.Option{okTier, httpmw.WithBalancer(balancer.Config{Decay: -1})}, "Decay"},
		{"limiter MaxKeys", []httpmw.Option{okTier, httpmw.WithLimiter(ratelimit.Config{MaxKeys: -1})}, "MaxKeys"},
	}
	for _, c := range httpCases {
		t.Run("httpmw/"+c.name, func(t *testing.T) {
			tr, err := httpmw.NewTransport(nil, c.opts...)
			if err == nil {
				_ = tr.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.field) || !strings.HasPrefix(err.Error(), "httpmw: ") {
				t.Errorf("error %q does not name %q (or lacks the httpmw: prefix)", err, c.field)
			}
		})
	}

	cc, err := grpc.NewClient("passthrough:///unused", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	okEp := grpcmw.Conn("a", cc)
	bp, _ := balancer.New(balancer.Config{})
	grpcCases := []struct {
		name  string
		opts  []grpcmw.Option
		field string
	}{
		{"no endpoints", nil, "no tiers; give at least the primary (WithTier)"},
		{"tier without endpoints", []grpcmw.Option{grpcmw.WithTier(degrade.Tier{Name: "t"})}, `tier "t"`},
		{"endpoint without name", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("", cc))}, "Name"},
		{"duplicate endpoint name", []grpcmw.Option{grpcmw.WithTier(degrade.Tier{Name: "p"}, okEp), grpcmw.WithTier(degrade.Tier{Name: "f"}, okEp)}, "endpoint name"},
		{"neither conn nor address", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Endpoint{})}, "Name"},
		{"tier with a picker", []grpcmw.Option{grpcmw.WithTier(degrade.Tier{Name: "p", Picker: bp}, okEp)}, "Picker"},
		{"balancer endpoints", []grpcmw.Option{grpcmw.WithEndpoints(okEp), grpcmw.WithBalancer(balancer.Config{Endpoints: []sturdy.Endpoint{{Name: "z"}}})}, "Endpoints"},
		{"negative max wait", []grpcmw.Option{grpcmw.WithEndpoints(okEp), grpcmw.WithMaxWait(-1)}, "WithMaxWait"},
		{"unknown code", []grpcmw.Option{grpcmw.WithEndpoints(okEp), grpcmw.WithCodeClass(99, sturdy.Fatal)}, "code"},
		{"target without transport security", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Target("a", "127.0.0.1:1"))}, `endpoint "a"`},
		{"negative probe interval", []grpcmw.Option{grpcmw.WithEndpoints(okEp), grpcmw.WithProbes(health.ProbeConfig{Interval: -1})}, "Interval"},
		{"balancer Decay", []grpcmw.Option{grpcmw.WithEndpoints(okEp), grpcmw.WithBalancer(balancer.Config{Decay: -1})}, "Decay"},
		{"negative quality", []grpcmw.Option{grpcmw.WithTier(degrade.Tier{Name: "p", Quality: -1}, okEp)}, "Quality"},
	}
	for _, c := range grpcCases {
		t.Run("grpcmw/"+c.name, func(t *testing.T) {
			cl, err := grpcmw.New(c.opts...)
			if err == nil {
				_ = cl.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.field) || !strings.HasPrefix(err.Error(), "grpcmw: ") {
				t.Errorf("error %q does not name %q (or lacks the grpcmw: prefix)", err, c.field)
			}
		})
	}
	cc.Close()
	record(t, figure{Order: 300, Fault: "invalid configurations", Adapter: "both",
		Does: "the constructor refuses each with an error that names the field or option to fix", OpenConn: -1,
		Calls: int64(len(httpCases) + len(grpcCases)), Errors: int64(len(httpCases) + len(grpcCases)),
		Note: "one row per configuration, all refused", Leaked: leaks()})
}

// TestConfigErrorsNeverQuoteCredentials gives endpoint URLs that carry a
// secret where it does not belong (user info, a query key) and are
// refused: the error must say what is wrong without repeating the secret.
func TestConfigErrorsNeverQuoteCredentials(t *testing.T) {
	const secret = "sk-cfg-0123456789secret"
	for _, u := range []string{
		"http://user:" + secret + "@127.0.0.1:1",
		"http://user:" + secret + "@127.0.0.1:bad port",
		"ftp://user:" + secret + "@127.0.0.1",
		"https://generativelanguage.googleapis.com/?key=" + secret,
		"https://example.com/#" + secret,
	} {
		_, err := httpmw.NewTransport(nil, httpmw.WithTier(degrade.Tier{}, httpmw.URL("a", u, nil)))
		if err == nil {
			t.Errorf("URL %q accepted", u)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("config error quotes the secret: %v", err)
		}
	}
}

// onceReader is a request body without GetBody that records what was read
// from it and whether it was closed.
type onceReader struct {
	r      io.Reader
	closed atomic.Int32
	failAt int // > 0: fail the read past this many bytes
	n      int
}

func (o *onceReader) Read(p []byte) (int, error) {
	if o.failAt > 0 && o.n >= o.failAt {
		return 0, errors.New("disk gone")
	}
	n, err := o.r.Read(p)
	o.n += n
	return n, err
}

func (o *onceReader) Close() error { o.closed.Add(1); return nil }

// recordingServer answers per a function and records every body it
// received.
type recordingServer struct {
	*rig.HTTPServer
	mu     sync.Mutex
	bodies [][]byte
}

func startRecording(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *recordingServer {
	t.Helper()
	s := &recordingServer{}
	hs, err := rig.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.mu.Unlock()
		h(w, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	s.HTTPServer = hs
	t.Cleanup(hs.Close)
	return s
}

func (s *recordingServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func answer(status int, contentType string, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType == "" {
			w.Header()["Content-Type"] = nil // no sniffing: really none
		} else {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const okBody = `{"id":"1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hi"}}]}`

func twoEndpoints(t *testing.T, a, b *recordingServer, opts ...httpmw.Option) *http.Client {
	t.Helper()
	base := &http.Transport{}
	tr, err := httpmw.NewTransport(base, append([]httpmw.Option{
		httpmw.WithTier(degrade.Tier{Name: "tier0"}, httpmw.URL("a", a.URL, nil), httpmw.URL("b", b.URL, nil)),
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}), // a first
		httpmw.WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close(); tr.CloseIdleConnections() })
	return &http.Client{Transport: tr}
}

// TestUnreplayableBodyIsSentOnce: a body without GetBody that is longer
// than the replay buffer goes to one endpoint, whole, and is never
// retried: the failing endpoint's answer comes back, marked with its one
// attempt, and the other endpoint receives nothing. A body that fits the
// buffer is replayed byte for byte.
func TestUnreplayableBodyIsSentOnce(t *testing.T) {
	fig := figure{Order: 310, Fault: "unreplayable body (no GetBody, 4 KiB > 1 KiB buffer)", Adapter: "httpmw",
		Does:  "sends it once, whole, never retries or hedges it; returns the failing answer with its one attempt; a body within the buffer is replayed byte for byte",
		Calls: 2, OK: 1, Errors: 1, OpenConn: -1}
	recordAtEnd(t, &fig)
	a := startRecording(t, answer(http.StatusServiceUnavailable, "application/json", `{"error":{}}`))
	b := startRecording(t, answer(http.StatusOK, "application/json", okBody))
	c := twoEndpoints(t, a, b, httpmw.WithMaxBodyBuffer(1024))

	big := bytes.Repeat([]byte("x"), 4096)
	body := &onceReader{r: bytes.NewReader(big)}
	req, _ := http.NewRequest(http.MethodPost, chatURL, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(httpmw.HeaderAttempts) != "a:unavailable" {
		t.Errorf("got %d %q; want a's 503 with one attempt", resp.StatusCode, resp.Header.Get(httpmw.HeaderAttempts))
	}
	if got := a.received(); len(got) != 1 || !bytes.Equal(got[0], big) {
		t.Errorf("a received %d bodies; want the whole body once", len(got))
	}
	if n := len(b.received()); n != 0 {
		t.Errorf("b received %d requests; an unreplayable body must not be retried", n)
	}
	if body.closed.Load() == 0 {
		t.Error("the request body was not closed")
	}

	small := []byte(`{"model":"big","messages":[{"role":"user","content":"` + prompt + `"}]}`)
	body = &onceReader{r: bytes.NewReader(small)}
	req, _ = http.NewRequest(http.MethodPost, chatURL, body)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a buffered body was not retried: %d", resp.StatusCode)
	}
	if got := b.received(); len(got) != 1 || !bytes.Equal(got[0], small) {
		t.Errorf("b did not receive the replayed body byte for byte")
	}
	fig.Attempts = int64(len(a.received()) + len(b.received()))
}

// TestBodyReadErrorFailsTheCall: a body that fails while it is buffered
// fails the call before anything is sent, with the read error, and is
// closed.
func TestBodyReadErrorFailsTheCall(t *testing.T) {
	a := startRecording(t, answer(http.StatusOK, "application/json", okBody))
	b := startRecording(t, answer(http.StatusOK, "application/json", okBody))
	c := twoEndpoints(t, a, b)
	body := &onceReader{r: strings.NewReader(strings.Repeat("y", 100)), failAt: 10}
	req, _ := http.NewRequest(http.MethodPost, chatURL, body)
	_, err := c.Do(req)
	if err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("err = %v; want the body's read error", err)
	}
	if n := len(a.received()) + len(b.received()); n != 0 {
		t.Errorf("%d requests sent with a body that could not be read", n)
	}
	if body.closed.Load() == 0 {
		t.Error("the request body was not closed")
	}
}

// TestOversizedBodyNeverGoesToAFallbackWithTheWrongModel: the primary
// fails, and the body (no GetBody, beyond the buffer) cannot be rewritten
// for the fallback tier's model: the call fails rather than send the
// fallback the primary's model, and the fallback receives nothing.
func TestOversizedBodyNeverGoesToAFallbackWithTheWrongModel(t *testing.T) {
	a := startRecording(t, answer(http.StatusServiceUnavailable, "application/json", `{"error":{}}`))
	fb := startRecording(t, answer(http.StatusOK, "application/json", okBody))
	tr, err := httpmw.NewTransport(&http.Transport{},
		httpmw.WithTier(degrade.Tier{Name: "tier0", Model: "big"}, httpmw.URL("a", a.URL, nil)),
		httpmw.WithTier(degrade.Tier{Name: "tier1", Model: "small"}, httpmw.URL("fb", fb.URL, nil)),
		httpmw.WithMaxBodyBuffer(64))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Close(); tr.CloseIdleConnections() }()
	big := chatBody("big", false) // > 64 bytes
	req, _ := http.NewRequest(http.MethodPost, chatURL, &onceReader{r: bytes.NewReader(big)})
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("the call succeeded; the fallback got %q", fb.received())
		}
	}
	for _, got := range fb.received() {
		if bytes.Contains(got, []byte(`"big"`)) {
			t.Errorf("the fallback tier received the primary's model: %q", got)
		}
	}
	t.Logf("oversized body: err=%v, fallback received %d requests", err, len(fb.received()))
}

// TestMalformedRetryAfterIsIgnored: 429s whose wait hints are garbage are
// still retried elsewhere at once; no hint is believed, nothing panics, the
// call does not wait.
func TestMalformedRetryAfterIsIgnored(t *testing.T) {
	fig := figure{Order: 320, Fault: "malformed Retry-After / retry-after-ms / x-ratelimit-reset-* on 429", Adapter: "httpmw",
		Does: "ignores the hint (no cooldown, no wait) and retries elsewhere at once", Deadline: 2 * time.Second, OpenConn: -1}
	recordAtEnd(t, &fig)
	hints := []http.Header{
		{"Retry-After": {"soon"}},
		{"Retry-After": {"-5"}},
		{"Retry-After": {"1e400"}},
		{"Retry-After": {"99999999999999999999999"}},
		{"Retry-After": {"Wed, 99 Foo 2026 25:61:61 GMT"}},
		{"Retry-After": {""}},
		{"Retry-After-Ms": {"NaN"}},
		{"Retry-After-Ms": {"-Inf"}},
		{"Retry-After-Ms": {"0x10"}},
		{"X-Ratelimit-Reset-Requests": {"forever"}, "X-Ratelimit-Remaining-Requests": {"0"}},
		{"X-Ratelimit-Reset-Tokens": {"1h1h1h-"}, "X-Ratelimit-Remaining-Tokens": {"0"}},
		{"Grpc-Retry-Pushback-Ms": {"junk"}},
	}
	var slowest time.Duration
	var ok int64
	for _, h := range hints {
		a := startRecording(t, func(w http.ResponseWriter, r *http.Request) {
			for k, v := range h {
				w.Header()[k] = v
			}
			answer(http.StatusTooManyRequests, "application/json", `{"error":{"type":"rate_limit"}}`)(w, r)
		})
		b := startRecording(t, answer(http.StatusOK, "application/json", okBody))
		c := twoEndpoints(t, a, b)
		for range 3 {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := c.Do(chatReq(ctx, "big", false))
			if err != nil {
				t.Errorf("hint %v: %v", h, err)
				cancel()
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			cancel()
			d := time.Since(start)
			slowest = max(slowest, d)
			if resp.StatusCode != http.StatusOK || d > 500*time.Millisecond {
				t.Errorf("hint %v: status %d after %v; want b's answer at once", h, resp.StatusCode, d)
			} else {
				ok++
			}
		}
	}
	fig.Calls, fig.OK, fig.Slowest = int64(3*len(hints)), ok, slowest
	fig.Note = fmt.Sprintf("%d kinds of garbage, 3 calls each", len(hints))
}

// TestMalformedJSONNeedingARewriteFailsTheCall: when the fallback tier
// must rewrite "model" and the body is not a JSON object, the call fails
// as fatal (naming the rewrite) and the fallback receives nothing; a JSON
// body without "model" goes as is.
func TestMalformedJSONNeedingARewriteFailsTheCall(t *testing.T) {
	fig := figure{Order: 330, Fault: "malformed JSON body when the fallback tier must rewrite the model", Adapter: "httpmw",
		Does: "fails the call as fatal, naming the rewrite and not quoting the body; the fallback never gets the wrong model", OpenConn: -1}
	recordAtEnd(t, &fig)
	a := startRecording(t, answer(http.StatusServiceUnavailable, "application/json", `{"error":{}}`))
	fb := startRecording(t, answer(http.StatusOK, "application/json", okBody))
	tr, err := httpmw.NewTransport(&http.Transport{},
		httpmw.WithTier(degrade.Tier{Name: "tier0", Model: "big"}, httpmw.URL("a", a.URL, nil)),
		httpmw.WithTier(degrade.Tier{Name: "tier1", Model: "small"}, httpmw.URL("fb", fb.URL, nil)))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	bad := []string{`{not json`, `["model","big"]`, `{"model":"big",}`, `{"model":"big"`, `{"model":big}`, `"model"`, `{"a":1}{"model":"big"}`, "\xff\xfe{}"}
	var fails int64
	for _, b := range bad {
		req, _ := http.NewRequest(http.MethodPost, chatURL, strings.NewReader(b))
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			t.Errorf("body %q: got %d; want the call to fail", b, resp.StatusCode)
			continue
		}
		fails++
		if !errors.Is(err, sturdy.ErrFatal) || !strings.Contains(err.Error(), "rewrite the model") {
			t.Errorf("body %q: err = %v; want a fatal error about the rewrite", b, err)
		}
		if strings.Contains(err.Error(), b) && len(b) > 3 {
			t.Errorf("body %q: the error repeats the body: %v", b, err)
		}
	}
	if n := len(fb.received()); n != 0 {
		t.Errorf("the fallback received %d malformed bodies", n)
	}
	req, _ := http.NewRequest(http.MethodPost, chatURL, strings.NewReader(`{"messages":[]}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := fb.received(); len(got) != 1 || string(got[0]) != `{"messages":[]}` {
		t.Errorf("a body without model was not sent as is: %q", got)
	}
	_ = tr.Close()
	tr.CloseIdleConnections()
	fig.Calls, fig.OK, fig.Errors = int64(len(bad))+1, 1, fails
}

// TestResponsesWithoutContentType: a success without Content-Type comes
// back whole; a 503 without one is still retried.
func TestResponsesWithoutContentType(t *testing.T) {
	fig := figure{Order: 340, Fault: "responses without Content-Type (a 503 and a 200)", Adapter: "httpmw",
		Does: "retries the 503; passes the 200's body through whole, as a plain (non-SSE) body", OpenConn: -1}
	recordAtEnd(t, &fig)
	a := startRecording(t, answer(http.StatusServiceUnavailable, "", "busy"))
	b := startRecording(t, answer(http.StatusOK, "", okBody))
	c := twoEndpoints(t, a, b, httpmw.WithTTFBTimeout(time.Second))
	var ty tally
	for range 10 {
		ty.calls.Add(1)
		resp, err := c.Do(chatReq(context.Background(), "big", false))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(got) != okBody || resp.Header.Get("Content-Type") != "" {
			t.Errorf("got %d %q (Content-Type %q), %v", resp.StatusCode, got, resp.Header.Get("Content-Type"), err)
			continue
		}
		ty.ok.Add(1)
	}
	ty.fill(&fig)
}

// hang sends status and headers, flushes, then sends nothing until the
// client goes away.
func hang(status int, contentType string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}
}

// TestHeadersThenNothing: servers that send their headers and then
// nothing. With a time-to-first-byte timeout the call fails over to a
// healthy endpoint at that timeout; without one, it ends at its deadline
// with one error, never hangs.
func TestHeadersThenNothing(t *testing.T) {
	fig := figure{Order: 350, Fault: "server sends headers, then nothing (200 JSON, 200 SSE, 503)", Adapter: "httpmw",
		Does: "gives the attempt up at the time-to-first-byte or attempt timeout and fails over; without either, the call ends at its deadline with one error", OpenConn: -1, Deadline: 2 * time.Second}
	recordAtEnd(t, &fig)
	var ty tally
	defer ty.fill(&fig)
	cases := []struct {
		name        string
		status      int
		ct          string
		ttfb        time.Duration
		wantOK      bool
		deadline    time.Duration
		withinTTFB  bool
		attemptTime time.Duration
	}{
		{"200 JSON, TTFB 100ms", 200, "application/json", 100 * time.Millisecond, true, 2 * time.Second, true, 0},
		{"200 SSE, TTFB 100ms", 200, "text/event-stream", 100 * time.Millisecond, true, 2 * time.Second, true, 0},
		{"503, TTFB 100ms", 503, "application/json", 100 * time.Millisecond, true, 2 * time.Second, true, 0},
		{"503, attempt timeout 100ms", 503, "application/json", 0, true, 2 * time.Second, true, 100 * time.Millisecond},
		{"200 JSON, no timeouts", 200, "application/json", 0, false, 300 * time.Millisecond, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := startRecording(t, hang(tc.status, tc.ct))
			b := startRecording(t, answer(http.StatusOK, "application/json", okBody))
			opts := []httpmw.Option{httpmw.WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1, AttemptTimeout: tc.attemptTime})}
			if tc.ttfb > 0 {
				// The call does not stream: WithResponseTimeout bounds it
				// (WithTTFBTimeout is for streams).
				opts = append(opts, httpmw.WithTTFBTimeout(tc.ttfb), httpmw.WithResponseTimeout(tc.ttfb))
			}
			c := twoEndpoints(t, a, b, opts...)
			ty.calls.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			start := time.Now()
			resp, err := c.Do(chatReq(ctx, "big", false)) // round-robin: a first
			d := time.Since(start)
			ty.took(d)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("err = %v after %v", err, d)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.Header.Get(httpmw.HeaderEndpoint) != "b" {
					t.Errorf("served by %q", resp.Header.Get(httpmw.HeaderEndpoint))
				}
				ty.ok.Add(1)
				if limit := max(tc.ttfb, tc.attemptTime) + 400*time.Millisecond; d > limit {
					t.Errorf("took %v; the hung attempt should have been given up at %v", d, max(tc.ttfb, tc.attemptTime))
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a hung attempt without timeouts succeeded?")
			}
			ty.errs.Add(1)
			checkCallError(t, err)
			if d > tc.deadline+slack {
				t.Errorf("took %v, past the deadline %v", d, tc.deadline)
			}
		})
	}
}
