package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
	"github.com/sturdyai/sturdy/sturdytest"
)

// leakCheck snapshots the goroutines running now. The function it returns,
// called once everything the test started is closed, fails the test if a
// goroutine started since is still there (goleak retries for a while) and
// returns how many there are.
func leakCheck(t *testing.T) func() int {
	t.Helper()
	opts := append(rig.IgnoreToxiproxy(), goleak.IgnoreCurrent())
	return func() int {
		t.Helper()
		err := goleak.Find(opts...)
		if err == nil {
			return 0
		}
		t.Errorf("goroutines left behind: %v", err)
		return max(1, strings.Count(err.Error(), "Goroutine "))
	}
}

// recordAtEnd snapshots the goroutines now and registers a cleanup that
// runs after every cleanup the test registers later (servers, transports):
// it counts the goroutines left behind into f.Leaked and records f.
func recordAtEnd(t *testing.T, f *figure) {
	t.Helper()
	leaks := leakCheck(t)
	t.Cleanup(func() {
		f.Leaked = leaks()
		record(t, *f)
	})
}

// key is the credential of endpoint name.
func key(name string) string { return "sk-" + name + "-0123456789secret" }

const chatURL = "http://llm.invalid/v1/chat/completions"

// prompt is the user message every test sends; nothing of it may show up
// in telemetry or errors.
const prompt = "PROMPT-d41d8cd98f00-please-summarise-this-confidential-memo"

func chatBody(model string, stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":    model,
		"stream":   stream,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
	})
	return b
}

func chatReq(ctx context.Context, model string, stream bool) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, chatURL, bytes.NewReader(chatBody(model, stream)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-caller-must-never-leave")
	return req
}

// httpRig is three fake LLM servers (a, b, c), each behind its own
// toxiproxy proxy, and an httpmw.Transport over them.
type httpRig struct {
	toxi    *rig.Toxi
	llms    map[string]*rig.LLM
	proxies map[string]*rig.Proxy
	names   []string
	count   *rig.CountingTransport
	base    *http.Transport
	tr      *httpmw.Transport
	client  *http.Client
}

// newHTTPRig starts servers named by tiers (one slice of names per tier,
// primary first, tier i serving model models[i]) behind toxiproxy, and a
// Transport over them with opts.
func newHTTPRig(t *testing.T, tiers [][]string, models []string, cfg sturdytest.Config, opts ...httpmw.Option) *httpRig {
	t.Helper()
	r := &httpRig{toxi: rig.StartToxi(), llms: map[string]*rig.LLM{}, proxies: map[string]*rig.Proxy{}}
	r.base = &http.Transport{MaxIdleConnsPerHost: 16}
	r.count = &rig.CountingTransport{Base: r.base}
	var all []httpmw.Option
	for i, names := range tiers {
		tier := degrade.Tier{Name: "tier" + string(rune('0'+i)), Model: models[i]}
		var eps []httpmw.Endpoint
		for _, n := range names {
			c := cfg
			c.Name = n
			llm, err := rig.StartLLM(c)
			if err != nil {
				t.Fatal(err)
			}
			p, err := r.toxi.Proxy(n, llm.Addr)
			if err != nil {
				t.Fatal(err)
			}
			r.llms[n], r.proxies[n] = llm, p
			r.names = append(r.names, n)
			eps = append(eps, httpmw.URL(n, p.URL(), http.Header{"Authorization": {"Bearer " + key(n)}}))
		}
		all = append(all, httpmw.WithTier(tier, eps...))
	}
	tr, err := httpmw.NewTransport(r.count, append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.tr = tr
	r.client = &http.Client{Transport: tr}
	return r
}

// close closes the client side, then toxiproxy, then the servers, and
// returns how many server connections were still open after the client
// closed its idle ones (before the servers closed theirs).
func (r *httpRig) close() int64 {
	_ = r.tr.Close()
	r.tr.CloseIdleConnections()
	open := settle(func() int64 {
		var n int64
		for _, l := range r.llms {
			n += l.Conns.Open()
		}
		return n
	})
	r.toxi.Close()
	for _, l := range r.llms {
		l.Close()
	}
	return open
}

// settle waits (up to 2s) for open() to reach zero and returns its last
// value.
func settle(open func() int64) int64 {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := open()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tally counts what calls came to.
type tally struct {
	calls, ok, errs, cut atomic.Int64
	mu                   sync.Mutex
	slowest              time.Duration
}

func (ty *tally) took(d time.Duration) {
	ty.mu.Lock()
	ty.slowest = max(ty.slowest, d)
	ty.mu.Unlock()
}

func (ty *tally) fill(f *figure) {
	f.Calls, f.OK, f.Errors, f.Cut = ty.calls.Load(), ty.ok.Load(), ty.errs.Load(), ty.cut.Load()
	ty.mu.Lock()
	f.Slowest = ty.slowest
	ty.mu.Unlock()
}

// slack is how far past its deadline a call may return: the time to
// notice the deadline and unwind, on a loaded 2-core machine under -race.
const slack = 500 * time.Millisecond

// checkCallError asserts that err is one error that lists the call's
// attempts: a *sturdy.Error whose message names every attempted endpoint.
func checkCallError(t *testing.T, err error) {
	t.Helper()
	se, ok := errors.AsType[*sturdy.Error](err)
	if !ok {
		t.Errorf("call error is not a *sturdy.Error: %T %v", err, err)
		return
	}
	msg := err.Error()
	for _, a := range se.Attempts {
		if !strings.Contains(msg, a.Endpoint) {
			t.Errorf("error %q does not name attempted endpoint %q", msg, a.Endpoint)
		}
	}
	if len(se.Attempts) == 0 && se.Endpoint == "" && se.Class != sturdy.Canceled {
		// A call refused before any attempt (no endpoint allowed, a
		// limiter) says why; it has no attempts to list.
		if se.Err == nil {
			t.Errorf("error lists no attempt and no reason: %q", msg)
		}
	}
}

// loggedFailures is how many failed calls of a tally doHTTP logs, with
// their attempts, so that a run that fails says why.
const loggedFailures = 5

// doHTTP makes one call and classifies it into ty: answered in full,
// failed with one error listing its attempts (a *sturdy.Error, or the last
// error response with Sturdy-Attempts), or cut after the first byte (a
// read error, never a clean EOF on a truncated body).
func doHTTP(t *testing.T, c *http.Client, ty *tally, deadline time.Duration, model string, stream bool) (tier string) {
	t.Helper()
	ty.calls.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	defer func() {
		d := time.Since(start)
		ty.took(d)
		if d > deadline+slack {
			t.Errorf("call took %v, past its deadline %v", d, deadline)
		}
	}()
	resp, err := c.Do(chatReq(ctx, model, stream))
	if err != nil {
		if ty.errs.Add(1) <= loggedFailures {
			t.Logf("call failed: %v", err)
		}
		checkCallError(t, err)
		return ""
	}
	b, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if ty.errs.Add(1) <= loggedFailures {
			t.Logf("call answered %d; %s: %s", resp.StatusCode, httpmw.HeaderAttempts, resp.Header.Get(httpmw.HeaderAttempts))
		}
		if resp.Header.Get(httpmw.HeaderAttempts) == "" {
			t.Errorf("final error response %d lacks %s", resp.StatusCode, httpmw.HeaderAttempts)
		}
		return ""
	}
	if rerr != nil {
		ty.cut.Add(1)
		return ""
	}
	if stream {
		if !bytes.HasSuffix(bytes.TrimSpace(b), []byte("data: [DONE]")) {
			t.Errorf("stream ended cleanly without [DONE]: %q", b)
		}
	} else if !json.Valid(b) {
		t.Errorf("body ended cleanly but is not whole JSON: %q", b)
	}
	ty.ok.Add(1)
	return resp.Header.Get(httpmw.HeaderTier)
}

// load runs calls calls from workers goroutines; call i streams when i is
// odd.
func load(calls, workers int, do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= calls {
					return
				}
				do(i)
			}
		})
	}
	wg.Wait()
}

func readAllErr(resp *http.Response) ([]byte, error) { return io.ReadAll(resp.Body) }

// closedURL is the URL of a loopback port nothing listens on: connecting
// is refused.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	_ = l.Close()
	return u
}
