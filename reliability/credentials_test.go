package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
	"github.com/sturdyai/sturdy/sturdytest"
)

// TestHTTPCredentialsStayWithTheirEndpoint sends 300 calls, hedged and
// failed over, across two tiers whose endpoints answer 500s and 429s, each
// endpoint with its own key (Authorization or api-key). Every server
// requires its own key: a foreign one would be counted (and answered 401).
// Afterwards each server has seen its own key and nothing else, and the
// caller's keys reached none.
func TestHTTPCredentialsStayWithTheirEndpoint(t *testing.T) {
	fig := figure{Order: 400, Fault: "credentials across failover, hedges and fallback tiers", Adapter: "httpmw",
		Does: "strips the caller's Authorization/Api-Key/X-Api-Key and sets each endpoint's own header on its attempts only", OpenConn: -1}
	recordAtEnd(t, &fig)
	type spec struct {
		name, tier, header string
		cfg                sturdytest.Config
	}
	specs := []spec{
		{"a", "tier0", "Authorization", sturdytest.Config{ErrorRate: 0.5}},
		{"b", "tier0", "Api-Key", sturdytest.Config{RateLimit: sturdytest.RateLimit{Share: 0.5, NoRetryAfter: true}}},
		{"c", "tier1", "Authorization", sturdytest.Config{Latency: sturdytest.Latency{Median: time.Millisecond, Sigma: 1}}},
		{"d", "tier1", "Api-Key", sturdytest.Config{}},
	}
	llms := map[string]*rig.LLM{}
	tiers := map[string]degrade.Tier{"tier0": {Name: "tier0", Model: "big"}, "tier1": {Name: "tier1", Model: "small"}}
	eps := map[string][]httpmw.Endpoint{}
	for _, s := range specs {
		cfg := s.cfg
		cfg.Name, cfg.Seed, cfg.RequiredAPIKey = s.name, 3, key(s.name)
		l, err := rig.StartLLM(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		llms[s.name] = l
		v := key(s.name)
		if s.header == "Authorization" {
			v = "Bearer " + v
		}
		eps[s.tier] = append(eps[s.tier], httpmw.URL(s.name, l.URL(), http.Header{s.header: {v}}))
	}
	tr, err := httpmw.NewTransport(&http.Transport{}, httpmw.WithTier(tiers["tier0"], eps["tier0"]...), httpmw.WithTier(tiers["tier1"], eps["tier1"]...),
		httpmw.WithFailover(failover.Config{MaxAttempts: 2, BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: -1}),
		httpmw.WithHedge(hedge.Config{Delay: 2 * time.Millisecond, BudgetRatio: 0.5}),
		httpmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close(); tr.CloseIdleConnections() })
	client := &http.Client{Transport: tr}
	var ty tally
	tierCount := map[string]int{}
	var mu sync.Mutex
	load(300, 6, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := chatReq(ctx, "big", i%2 == 1)
		req.Header.Set("X-Api-Key", "sk-caller-x-api-key-never-leave")
		req.Header.Set("Api-Key", "sk-caller-api-key-never-leave")
		ty.calls.Add(1)
		resp, err := client.Do(req)
		if err != nil {
			ty.errs.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ty.ok.Add(1)
			mu.Lock()
			tierCount[resp.Header.Get(httpmw.HeaderTier)]++
			mu.Unlock()
		} else {
			ty.errs.Add(1)
		}
	})
	var total int64
	for name, l := range llms {
		st := l.Stats()
		total += st.ByPath["/v1/chat/completions"]
		if st.ForeignCredentials != 0 || st.ByStatus[http.StatusUnauthorized] != 0 {
			t.Errorf("%s received %d foreign credentials (%d answered 401)", name, st.ForeignCredentials, st.ByStatus[http.StatusUnauthorized])
		}
		if got := l.SeenCredentials(); !slices.Equal(got, []string{key(name)}) {
			t.Errorf("%s saw credentials %q; want only its own", name, got)
		}
	}
	if tierCount["tier0"] == 0 || tierCount["tier1"] == 0 {
		t.Errorf("calls served by tier: %v; the test needs both", tierCount)
	}
	ty.fill(&fig)
	fig.Attempts = total
	fig.Note = fmt.Sprintf("served by tier: %v; each of 4 servers saw only its own key, 0 foreign", tierCount)
}

// headerRecorder records the credential headers of every request it
// receives and answers with h.
type headerRecorder struct {
	*rig.HTTPServer
	mu   sync.Mutex
	seen []string
}

func startHeaderRecorder(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *headerRecorder {
	t.Helper()
	s := &headerRecorder{}
	hs, err := rig.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		for _, k := range []string{"Authorization", "Api-Key", "X-Api-Key", "X-Goog-Api-Key", "Cookie"} {
			for _, v := range r.Header.Values(k) {
				s.seen = append(s.seen, k+": "+v)
			}
		}
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

func (s *headerRecorder) credentials() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// TestHTTPRedirectsCarryCredentialsOnlyBackToTheirEndpoint: endpoint a
// answers 307 to four places; http.Client follows. The redirected request
// carries a's key only when it goes back to a (relative, or absolute to a's
// origin); to another endpoint's origin or to a stranger it carries no key
// at all, and the caller's key goes nowhere.
func TestHTTPRedirectsCarryCredentialsOnlyBackToTheirEndpoint(t *testing.T) {
	fig := figure{Order: 410, Fault: "307 redirects: relative, to the endpoint's origin, to another endpoint, to a stranger", Adapter: "httpmw",
		Does: "a redirect carries the endpoint's key only back to that endpoint; elsewhere it carries none; the caller's key never", OpenConn: -1}
	recordAtEnd(t, &fig)
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, okBody)
	}
	stranger := startHeaderRecorder(t, ok)
	b := startHeaderRecorder(t, ok)
	var target string
	var mu sync.Mutex
	a := startHeaderRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chat/completions" {
			mu.Lock()
			loc := target
			mu.Unlock()
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		ok(w, r)
	})
	tr, err := httpmw.NewTransport(&http.Transport{},
		httpmw.WithTier(degrade.Tier{Name: "tier0"},
			httpmw.URL("a", a.URL, http.Header{"Authorization": {"Bearer " + key("a")}, "Api-Key": {key("a")}})),
		httpmw.WithTier(degrade.Tier{Name: "tier1"},
			httpmw.URL("b", b.URL, http.Header{"Authorization": {"Bearer " + key("b")}})),
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close(); tr.CloseIdleConnections() })
	client := &http.Client{Transport: tr}
	cases := []struct {
		name, loc string
		to        *headerRecorder
		want      []string
	}{
		{"relative", "/v1/redirected", a, []string{"Authorization: Bearer " + key("a"), "Api-Key: " + key("a")}},
		{"absolute, a's origin", a.URL + "/v1/redirected", a, []string{"Authorization: Bearer " + key("a"), "Api-Key: " + key("a")}},
		{"another endpoint's origin", b.URL + "/v1/redirected", b, nil},
		{"a stranger", stranger.URL + "/v1/redirected", stranger, nil},
	}
	for _, c := range cases {
		mu.Lock()
		target = c.loc
		mu.Unlock()
		before := len(c.to.credentials())
		if c.to == a {
			before = len(a.credentials()) + 2 // the first request's own key
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req := chatReq(ctx, "big", false)
		req.Header.Set("Api-Key", "sk-caller-api-key-never-leave")
		resp, err := client.Do(req)
		cancel()
		fig.Calls++
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			fig.Errors++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", c.name, resp.StatusCode)
			continue
		}
		fig.OK++
		got := c.to.credentials()[before:]
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: the redirect target received %q; want %q", c.name, got, c.want)
		}
	}
	for _, s := range []*headerRecorder{a, b, stranger} {
		for _, c := range s.credentials() {
			if strings.Contains(c, "caller") || (s != a && strings.Contains(c, key("a"))) || strings.Contains(c, key("b")) {
				t.Errorf("leaked credential %q", c)
			}
		}
	}
}

// TestGRPCCredentialsStayWithTheirEndpoint: per-endpoint metadata keys go
// only to their endpoint, across failover and the fallback tier.
func TestGRPCCredentialsStayWithTheirEndpoint(t *testing.T) {
	fig := figure{Order: 420, Fault: "credentials across failover and fallback tiers", Adapter: "grpcmw",
		Does: "adds each endpoint's Metadata to its own attempts only", OpenConn: -1}
	recordAtEnd(t, &fig)
	r := newGRPCRig(t, [][]string{{"a", "b"}, {"c"}}, []string{"big", "small"}, grpcOpts(t)...)
	t.Cleanup(func() { r.close() })
	r.servers["a"].Set(0, codes.Unavailable)
	var ty tally
	call := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		ty.calls.Add(1)
		if _, err := r.stub.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
			ty.errs.Add(1)
			return
		}
		ty.ok.Add(1)
	}
	for range 30 {
		call()
	}
	r.servers["b"].Set(0, codes.ResourceExhausted) // now tier0 fails whole: fallback to c
	for range 30 {
		call()
	}
	for _, n := range r.names {
		if got := r.servers[n].Credentials(); !slices.Equal(got, []string{"Bearer " + key(n)}) {
			t.Errorf("%s saw credentials %q; want only its own", n, got)
		}
	}
	if r.servers["c"].Calls.Load() == 0 {
		t.Error("the fallback tier served no call")
	}
	ty.fill(&fig)
	fig.Attempts = r.count.N()
	fig.Note = fmt.Sprintf("c (fallback) served %d; each server saw only its own key", r.servers["c"].Calls.Load())

	// A caller's own "authorization" metadata is dropped: the endpoint's
	// replaces it, and no server ever sees the caller's.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer sk-caller-grpc")
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := r.stub.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
		t.Errorf("call with caller metadata: %v", err)
	}
	for _, n := range r.names {
		if got := r.servers[n].Credentials(); !slices.Equal(got, []string{"Bearer " + key(n)}) {
			t.Errorf("with caller metadata, %s saw credentials %q; want only its own", n, got)
		}
	}
}
