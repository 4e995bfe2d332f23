package pipeline_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The options both adapters share must have the same names and argument
// types: read from the two options.go files.
func TestAdaptersShareOptions(t *testing.T) {
	shared := []string{
		"WithTier", "WithEndpoints", "WithFailover", "WithHedge", "WithHealth", "WithProbes",
		"WithLimiter", "WithThrottle", "WithBalancer", "WithMaxWait", "WithModelRewrite",
		"WithTracerProvider", "WithMeterProvider", "WithCallerCredentials",
		"WithOnAttempt", "WithOnFallback", "WithOnStateChange", "WithoutAttemptHistograms",
		"WithAffinity", "WithAffinityKey",
	}
	h, g := optionSignatures(t, "../../httpmw/options.go"), optionSignatures(t, "../../grpcmw/options.go")
	for _, name := range shared {
		hs, ok := h[name]
		require.True(t, ok, "httpmw lacks %s", name)
		gs, ok := g[name]
		require.True(t, ok, "grpcmw lacks %s", name)
		assert.Equal(t, hs, gs, "%s: httpmw and grpcmw differ", name)
	}
}

// optionSignatures maps each exported With* func of the file to its
// parameter types as written (Endpoint, ModelRewrite and KeyFunc are each
// adapter's own type of the same name).
func optionSignatures(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "With") {
			continue
		}
		var params []string
		for _, p := range fn.Type.Params.List {
			for range max(len(p.Names), 1) {
				params = append(params, types(p.Type))
			}
		}
		out[fn.Name.Name] = strings.Join(params, ", ")
	}
	return out
}

func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	case *ast.StarExpr:
		return "*" + types(e.X)
	case *ast.Ellipsis:
		return "..." + types(e.Elt)
	case *ast.FuncType:
		var ps []string
		for _, p := range e.Params.List {
			ps = append(ps, types(p.Type))
		}
		return "func(" + strings.Join(ps, ", ") + ")"
	}
	return fmt.Sprintf("%T", e)
}

// script is what each endpoint answers, call after call; the last answer
// repeats.
type script map[string][]string

// answer is the n-th (0-based) answer of endpoint ep.
func (s script) answer(ep string, n int) string {
	as := s[ep]
	if len(as) == 0 {
		return "ok"
	}
	return as[min(n, len(as)-1)]
}

// counter counts the calls each endpoint received.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) next(ep string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	n := c.n[ep]
	c.n[ep]++
	return n
}

// httpBase answers each host as the script says.
type httpBase struct {
	s script
	c counter
}

func (b *httpBase) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	ep := r.URL.Host
	code := map[string]int{"ok": 200, "down": 503, "bad": 422, "auth": 401}[b.s.answer(ep, b.c.next(ep))]
	return &http.Response{
		StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"id":"x"}`)), ContentLength: 10, Request: r,
	}, nil
}

// grpcConn is a grpc.ClientConnInterface that answers as the script says.
type grpcConn struct {
	ep string
	s  script
	c  *counter
}

func (g grpcConn) Invoke(_ context.Context, _ string, _, _ any, _ ...grpc.CallOption) error {
	code := map[string]codes.Code{"ok": codes.OK, "down": codes.Unavailable, "bad": codes.InvalidArgument, "auth": codes.Unauthenticated}[g.s.answer(g.ep, g.c.next(g.ep))]
	if code == codes.OK {
		return nil
	}
	return status.Error(code, "scripted")
}

func (grpcConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "no streams here")
}

// event is one thing a call did, as the hooks saw it.
type event struct {
	Kind     string // "attempt" or "fallback"
	Endpoint string // attempt: endpoint; fallback: from → to
	Tier     string
	What     string // attempt: kind/class; fallback: reason
}

type recorder struct {
	mu     sync.Mutex
	events []event
	states []string
}

func (r *recorder) attempt(a sturdy.Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{"attempt", a.Endpoint, a.Tier, a.Kind.String() + "/" + a.Class.String()})
}

func (r *recorder) fallback(f sturdy.Fallback) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{"fallback", f.From + "→" + f.To, "", string(f.Reason)})
}

func (r *recorder) state(c health.StateChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, c.Endpoint+":"+c.To.String())
}

// tier is a tier of the table: the degrade.Tier and its endpoint names.
type tier struct {
	t   degrade.Tier
	eps []string
}

// shared are the options under test, given to both adapters: each case
// says them once, as functions of what an adapter's options are.
type shared struct {
	failover *failover.Config
	health   *health.Config
	throttle *ratelimit.ThrottleConfig

	httpRewrite httpmw.ModelRewrite
	grpcRewrite grpcmw.ModelRewrite
}

var noBackoff = failover.Config{MaxAttempts: 3, BaseBackoff: -1, BudgetRatio: -1}

// The same configuration through httpmw and grpcmw makes the same
// decisions: the same attempts, on the same endpoints, of the same kinds
// and classes, the same fallbacks and health changes, and the same answer.
func TestAdaptersDecideAlike(t *testing.T) {
	tests := []struct {
		name   string
		tiers  []tier
		opts   shared
		script script
		calls  int
		want   []event
		served []string // per call: the serving tier, or "" for a failed call
		states []string
	}{{
		name:   "fails over within the tier",
		tiers:  []tier{{degrade.Tier{Name: "big"}, []string{"a", "b"}}},
		opts:   shared{failover: &noBackoff},
		script: script{"a": {"down"}},
		calls:  1,
		want:   []event{{"attempt", "a", "big", "first/unavailable"}, {"attempt", "b", "big", "retry/success"}},
		served: []string{"big"},
	}, {
		name:   "falls back when the tier is exhausted",
		tiers:  []tier{{degrade.Tier{Name: "big"}, []string{"a"}}, {degrade.Tier{Name: "small", Model: "m2"}, []string{"c"}}},
		opts:   shared{failover: &noBackoff},
		script: script{"a": {"down"}},
		calls:  1,
		want: []event{{"attempt", "a", "big", "first/unavailable"}, {"fallback", "big→small", "", "failed"},
			{"attempt", "c", "small", "first/success"}},
		served: []string{"small"},
	}, {
		name: "a tier's own failover overrides the adapter's",
		tiers: []tier{{degrade.Tier{Name: "big", Failover: &failover.Config{MaxAttempts: 1}}, []string{"a", "b"}},
			{degrade.Tier{Name: "small"}, []string{"c"}}},
		opts:   shared{failover: &noBackoff},
		script: script{"a": {"down"}},
		calls:  1,
		want: []event{{"attempt", "a", "big", "first/unavailable"}, {"fallback", "big→small", "", "failed"},
			{"attempt", "c", "small", "first/success"}},
		served: []string{"small"},
	}, {
		name:   "a bad credential is retried on another endpoint",
		tiers:  []tier{{degrade.Tier{Name: "big"}, []string{"a", "b"}}},
		opts:   shared{failover: &noBackoff},
		script: script{"a": {"auth"}},
		calls:  1,
		want:   []event{{"attempt", "a", "big", "first/auth"}, {"attempt", "b", "big", "retry/success"}},
		served: []string{"big"},
		states: []string{"a:ejected"}, // its credential is bad
	}, {
		name:   "a fatal answer ends the call",
		tiers:  []tier{{degrade.Tier{Name: "big"}, []string{"a", "b"}}, {degrade.Tier{Name: "small"}, []string{"c"}}},
		opts:   shared{failover: &noBackoff},
		script: script{"a": {"bad"}},
		calls:  1,
		want:   []event{{"attempt", "a", "big", "first/fatal"}},
		served: []string{""},
	}, {
		name: "a tier over its limit is skipped",
		tiers: []tier{{degrade.Tier{Name: "big", Limit: ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}}, []string{"a"}},
			{degrade.Tier{Name: "small"}, []string{"c"}}},
		opts:  shared{failover: &noBackoff},
		calls: 2,
		want: []event{{"attempt", "a", "big", "first/success"},
			{"fallback", "big→small", "", "limited"}, {"attempt", "c", "small", "first/success"}},
		served: []string{"big", "small"},
	}, {
		name:   "an ejected tier is skipped, and health says so",
		tiers:  []tier{{degrade.Tier{Name: "big"}, []string{"a"}}, {degrade.Tier{Name: "small"}, []string{"c"}}},
		opts:   shared{failover: &noBackoff, health: &health.Config{ConsecutiveFailures: 1}},
		script: script{"a": {"down"}},
		calls:  2,
		want: []event{{"attempt", "a", "big", "first/unavailable"}, {"fallback", "big→small", "", "failed"},
			{"attempt", "c", "small", "first/success"},
			{"fallback", "big→small", "", "unhealthy"}, {"attempt", "c", "small", "first/success"}},
		served: []string{"small", "small"},
		states: []string{"a:ejected"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, adapter := range []string{"httpmw", "grpcmw"} {
				t.Run(adapter, func(t *testing.T) {
					rec := &recorder{}
					run := runHTTP
					if adapter == "grpcmw" {
						run = runGRPC
					}
					served := run(t, tc.tiers, tc.opts, tc.script, tc.calls, rec)
					assert.Equal(t, tc.want, rec.events)
					assert.Equal(t, tc.served, served)
					assert.Equal(t, tc.states, rec.states)
				})
			}
		})
	}
}

var roundRobin = balancer.Config{Policy: balancer.RoundRobin, Seed: 1}

func runHTTP(t *testing.T, tiers []tier, o shared, s script, calls int, rec *recorder) []string {
	base := &httpBase{s: s}
	opts := []httpmw.Option{httpmw.WithBalancer(roundRobin), httpmw.WithOnAttempt(rec.attempt),
		httpmw.WithOnFallback(rec.fallback), httpmw.WithOnStateChange(rec.state)}
	if o.failover != nil {
		opts = append(opts, httpmw.WithFailover(*o.failover))
	}
	if o.health != nil {
		opts = append(opts, httpmw.WithHealth(*o.health))
	}
	if o.throttle != nil {
		opts = append(opts, httpmw.WithThrottle(*o.throttle))
	}
	if o.httpRewrite != nil {
		opts = append(opts, httpmw.WithModelRewrite(o.httpRewrite))
	}
	opts = append(opts, httpTiers(tiers)...)
	tr, err := httpmw.NewTransport(base, opts...)
	require.NoError(t, err)
	defer tr.Close()
	var served []string
	for range calls {
		req, _ := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			served = append(served, "")
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			served = append(served, "")
			continue
		}
		served = append(served, resp.Header.Get(httpmw.HeaderTier))
	}
	return served
}

func runGRPC(t *testing.T, tiers []tier, o shared, s script, calls int, rec *recorder) []string {
	cnt := &counter{}
	opts := []grpcmw.Option{grpcmw.WithBalancer(roundRobin), grpcmw.WithOnAttempt(rec.attempt),
		grpcmw.WithOnFallback(rec.fallback), grpcmw.WithOnStateChange(rec.state)}
	if o.failover != nil {
		opts = append(opts, grpcmw.WithFailover(*o.failover))
	}
	if o.health != nil {
		opts = append(opts, grpcmw.WithHealth(*o.health))
	}
	if o.throttle != nil {
		opts = append(opts, grpcmw.WithThrottle(*o.throttle))
	}
	if o.grpcRewrite != nil {
		opts = append(opts, grpcmw.WithModelRewrite(o.grpcRewrite))
	}
	for _, ti := range tiers {
		var eps []grpcmw.Endpoint
		for _, name := range ti.eps {
			eps = append(eps, grpcmw.Conn(name, grpcConn{ep: name, s: s, c: cnt}))
		}
		opts = append(opts, grpcmw.WithTier(ti.t, eps...))
	}
	c, err := grpcmw.New(opts...)
	require.NoError(t, err)
	defer c.Close()
	var served []string
	for range calls {
		before := c.Stats().Served
		err := c.Invoke(context.Background(), "/grpc.testing.TestService/UnaryCall", &testpb.SimpleRequest{}, &testpb.SimpleResponse{})
		if err != nil {
			served = append(served, "")
			continue
		}
		after := c.Stats().Served
		for i := range after {
			if after[i] != before[i] {
				served = append(served, tiers[i].t.Name)
			}
		}
	}
	return served
}

// A configuration that cannot work fails both adapters with the same
// errors, all at once, each naming the option or field to fix.
func TestAdaptersRejectAlike(t *testing.T) {
	tier := degrade.Tier{Name: "fb", Quality: 2, Failover: &failover.Config{MaxAttempts: -1}}
	h, err := httpmw.NewTransport(&httpBase{},
		httpmw.WithTier(degrade.Tier{Name: "p", Model: "big"}, httpmw.URL("a", "http://a", nil)),
		httpmw.WithTier(tier, httpmw.URL("b", "http://b", nil)),
		httpmw.WithFailover(failover.Config{MaxBackoff: -1}), httpmw.WithHedge(hedgeBad),
		httpmw.WithHealth(health.Config{FailureRate: 2}), httpmw.WithProbes(health.ProbeConfig{Interval: -1}),
		httpmw.WithBalancer(balancer.Config{Decay: -1}), httpmw.WithMaxWait(-1),
		httpmw.WithThrottle(ratelimit.ThrottleConfig{K: 0.5}))
	require.Error(t, err)
	assert.Nil(t, h)
	g, gerr := grpcmw.New(
		grpcmw.WithTier(degrade.Tier{Name: "p", Model: "big"}, grpcmw.Conn("a", grpcConn{})),
		grpcmw.WithTier(tier, grpcmw.Conn("b", grpcConn{})),
		grpcmw.WithFailover(failover.Config{MaxBackoff: -1}), grpcmw.WithHedge(hedgeBad),
		grpcmw.WithHealth(health.Config{FailureRate: 2}), grpcmw.WithProbes(health.ProbeConfig{Interval: -1}),
		grpcmw.WithBalancer(balancer.Config{Decay: -1}), grpcmw.WithMaxWait(-1),
		grpcmw.WithThrottle(ratelimit.ThrottleConfig{K: 0.5}))
	require.Error(t, gerr)
	assert.Nil(t, g)
	for _, want := range []string{
		"WithFailover: failover: MaxBackoff", "WithHedge: hedge: Quantile", "WithHealth: health:",
		"WithProbes: health:", "WithBalancer: balancer: Config.Decay", "WithMaxWait is -1ns",
		"WithThrottle: ratelimit: ThrottleConfig.K",
		`tier "fb" (WithTier #2): Quality is 2`, `tier "fb" (WithTier #2): Failover: failover: MaxAttempts is -1`,
		`tier "fb" (WithTier #2) has no Model while tier "p" (WithTier #1) serves "big"`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Equal(t, strings.ReplaceAll(err.Error(), "httpmw: ", "grpcmw: "), gerr.Error())
}

var hedgeBad = hedge.Config{Quantile: 2}

// Both adapters send the primary tier the caller's request as written and
// rewrite it for a later tier with a Model: the hook is called for the
// same tiers.
func TestAdaptersRewriteTheSameTiers(t *testing.T) {
	tiers := []tier{{degrade.Tier{Name: "big", Model: "m1"}, []string{"a"}}, {degrade.Tier{Name: "small", Model: "m2"}, []string{"c"}}}
	var mu sync.Mutex
	rewrote := map[string][]string{}
	note := func(adapter string, tier degrade.Tier) {
		mu.Lock()
		defer mu.Unlock()
		rewrote[adapter] = append(rewrote[adapter], tier.Name)
	}
	o := shared{
		httpRewrite: func(tier degrade.Tier, _ *http.Request, body []byte) ([]byte, error) {
			note("httpmw", tier)
			return body, nil
		},
		grpcRewrite: func(tier degrade.Tier, _ string, req any) (any, error) {
			note("grpcmw", tier)
			return req, nil
		},
	}
	s := script{"a": {"down"}}
	assert.Equal(t, []string{"small"}, runHTTP(t, tiers, o, s, 1, &recorder{}))
	assert.Equal(t, []string{"small"}, runGRPC(t, tiers, o, s, 1, &recorder{}))
	assert.Equal(t, []string{"small"}, rewrote["httpmw"], "httpmw rewrote a tier other than the fallback")
	assert.Equal(t, rewrote["httpmw"], rewrote["grpcmw"], "the adapters rewrite different tiers")
}

// With the same seeded throttle, both adapters throttle the same calls.
func TestAdaptersThrottleAlike(t *testing.T) {
	tiers := []tier{{degrade.Tier{Name: "big"}, []string{"a"}}, {degrade.Tier{Name: "small"}, []string{"c"}}}
	s := script{"a": {"down"}}
	logs := map[string][]event{}
	for _, adapter := range []string{"httpmw", "grpcmw"} {
		rec := &recorder{}
		run := runHTTP
		if adapter == "grpcmw" {
			run = runGRPC
		}
		served := run(t, tiers, shared{failover: &failover.Config{MaxAttempts: 1}, throttle: &ratelimit.ThrottleConfig{K: 1, Seed: 7},
			health: &health.Config{ConsecutiveFailures: -1, FailureRate: -1}}, s, 40, rec) // health never skips the tier

		for _, tier := range served {
			require.Equal(t, "small", tier)
		}
		logs[adapter] = rec.events
	}
	assert.Equal(t, logs["httpmw"], logs["grpcmw"])
	attempts, throttled := 0, 0
	for _, e := range logs["httpmw"] {
		if e.Kind == "attempt" && e.Endpoint == "a" {
			attempts++
		}
		if e.Kind == "fallback" && e.What == string(sturdy.FallbackLimited) {
			throttled++
		}
	}
	assert.Positive(t, throttled, "the refusing tier was never throttled")
	assert.Equal(t, 40, attempts+throttled)
}

// The same affinity key routes alike through both adapters: each key's
// calls land on the same endpoint in httpmw and grpcmw (rendezvous
// hashing over the same names), and a failed one fails over to the same
// next endpoint.
func TestAdaptersRouteByKeyAlike(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f"}
	var tiers = []tier{{degrade.Tier{Name: "big"}, names}}
	for _, down := range []string{"", "a", "c"} {
		s := script{}
		if down != "" {
			s[down] = []string{"down"}
		}
		for k := range 8 {
			key := balancer.SessionKey(fmt.Sprintf("session-%d", k))
			hrec, grec := &recorder{}, &recorder{}
			runHTTPKeyed(t, tiers, s, key, hrec)
			runGRPCKeyed(t, tiers, s, key, grec)
			require.NotEmpty(t, hrec.events)
			assert.Equal(t, hrec.events, grec.events, "key %d, %q down", k, down)
		}
	}
}

func runHTTPKeyed(t *testing.T, tiers []tier, s script, key balancer.Key, rec *recorder) {
	base := &httpBase{s: s}
	opts := []httpmw.Option{httpmw.WithAffinity(balancer.Affinity{}), httpmw.WithOnAttempt(rec.attempt),
		httpmw.WithFailover(noBackoff),
		httpmw.WithAffinityKey(func(*http.Request, []byte) (balancer.Key, bool) { return key, true })}
	opts = append(opts, httpTiers(tiers)...)
	tr, err := httpmw.NewTransport(base, opts...)
	require.NoError(t, err)
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

func runGRPCKeyed(t *testing.T, tiers []tier, s script, key balancer.Key, rec *recorder) {
	cnt := &counter{}
	opts := []grpcmw.Option{grpcmw.WithAffinity(balancer.Affinity{}), grpcmw.WithOnAttempt(rec.attempt),
		grpcmw.WithFailover(noBackoff),
		grpcmw.WithAffinityKey(func(context.Context, string, any) (balancer.Key, bool) { return key, true })}
	for _, ti := range tiers {
		var eps []grpcmw.Endpoint
		for _, name := range ti.eps {
			eps = append(eps, grpcmw.Conn(name, grpcConn{ep: name, s: s, c: cnt}))
		}
		opts = append(opts, grpcmw.WithTier(ti.t, eps...))
	}
	c, err := grpcmw.New(opts...)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Invoke(context.Background(), "/grpc.testing.TestService/UnaryCall", &testpb.SimpleRequest{}, &testpb.SimpleResponse{}))
}

// httpTiers gives each tier of tiers to httpmw, its endpoints at
// http://<name>.
func httpTiers(tiers []tier) []httpmw.Option {
	var opts []httpmw.Option
	for _, ti := range tiers {
		var eps []httpmw.Endpoint
		for _, name := range ti.eps {
			eps = append(eps, httpmw.URL(name, "http://"+name, nil))
		}
		opts = append(opts, httpmw.WithTier(ti.t, eps...))
	}
	return opts
}
