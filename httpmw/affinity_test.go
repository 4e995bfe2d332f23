package httpmw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
)

// hostBase answers every request in memory, 200 unless its host is in
// down (503), and records the host of each request.
type hostBase struct {
	mu    sync.Mutex
	hosts []string
	down  map[string]bool
}

func (b *hostBase) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	b.mu.Lock()
	b.hosts = append(b.hosts, r.URL.Host)
	code := http.StatusOK
	if b.down[r.URL.Host] {
		code = http.StatusServiceUnavailable
	}
	b.mu.Unlock()
	return &http.Response{
		StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"id":"x"}`)), ContentLength: 10, Request: r,
	}, nil
}

// sent returns the hosts requests went to since the last call, in order.
func (b *hostBase) sent() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.hosts
	b.hosts = nil
	return out
}

func replicas(n int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		name := fmt.Sprintf("r%d", i)
		eps[i] = URL(name, "http://"+name, nil)
	}
	return eps
}

func affinityTr(t *testing.T, base http.RoundTripper, eps []Endpoint, opts ...Option) *Transport {
	t.Helper()
	all := append([]Option{
		WithEndpoints(eps...),
		WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1}),
		WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
	}, opts...)
	tr, err := NewTransport(base, all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// promptBody is a chat request whose system prompt is doc (long: shared by
// every question about it) followed by question.
func promptBody(extra map[string]any, doc, question string) []byte {
	m := map[string]any{
		"model": "m",
		"messages": []map[string]string{
			{"role": "system", "content": doc},
			{"role": "user", "content": question},
		},
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// document returns about 4 KiB of text peculiar to i: 16 blocks of 256
// bytes, past the default MinBlocks of 8.
func document(i int) string {
	return strings.Repeat(fmt.Sprintf("document %d says something of its own. ", i), 200)[:4096]
}

func send(t *testing.T, tr http.RoundTripper, body []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, chatPath, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// Requests that share a long prefix land on one replica, call after call
// and from two Transports that share nothing; different prefixes spread.
func TestAffinitySamePrefixSameReplica(t *testing.T) {
	base1, base2 := &hostBase{}, &hostBase{}
	eps := replicas(8)
	tr1 := affinityTr(t, base1, eps, WithAffinity(balancer.Affinity{}))
	tr2 := affinityTr(t, base2, eps, WithBalancer(balancer.Config{Policy: balancer.PrefixAffinity}))
	used := map[string]bool{}
	for doc := range 12 {
		var hosts []string
		for q := range 3 {
			send(t, tr1, promptBody(nil, document(doc), fmt.Sprintf("question %d", q)), nil)
			send(t, tr2, promptBody(nil, document(doc), fmt.Sprintf("another question %d", q)), nil)
			hosts = append(hosts, base1.sent()...)
			hosts = append(hosts, base2.sent()...)
		}
		require.Len(t, hosts, 6)
		for _, h := range hosts {
			assert.Equal(t, hosts[0], h, "document %d went to %v", doc, hosts)
		}
		used[hosts[0]] = true
	}
	assert.Greater(t, len(used), 2, "12 documents on %d replicas", len(used))
}

// A prompt shorter than MinBlocks blocks goes by P2C: the same short
// request spreads over the replicas, where a long one sticks.
func TestAffinityShortPromptGoesByP2C(t *testing.T) {
	base := &hostBase{}
	tr := affinityTr(t, base, replicas(4), WithAffinity(balancer.Affinity{}))
	for range 40 {
		send(t, tr, promptBody(nil, "a short system prompt", "hi"), nil)
	}
	short := base.sent()
	for range 40 {
		send(t, tr, promptBody(nil, document(1), "hi"), nil)
	}
	long := base.sent()
	assert.Greater(t, len(distinct(short)), 1, "a short prompt stuck to one replica")
	assert.Len(t, distinct(long), 1, "a long prompt spread: %v", distinct(long))
}

func distinct(hosts []string) []string {
	s := slices.Clone(hosts)
	slices.Sort(s)
	return slices.Compact(s)
}

// A failover goes to the key's next replica: the one a Transport without
// the failed replica would pick first. Once ejected, the replica is
// skipped and the key's calls go there directly.
func TestAffinityFailoverAndEjectionFollowTheKeysOrder(t *testing.T) {
	eps := replicas(8)
	body := promptBody(nil, document(7), "which replica?")
	probe := &hostBase{}
	send(t, affinityTr(t, probe, eps, WithAffinity(balancer.Affinity{})), body, nil)
	first := probe.sent()[0]
	rest := slices.DeleteFunc(slices.Clone(eps), func(e Endpoint) bool { return e.Name == first })
	send(t, affinityTr(t, probe, rest, WithAffinity(balancer.Affinity{})), body, nil)
	second := probe.sent()[0]

	base := &hostBase{down: map[string]bool{first: true}}
	tr, err := NewTransport(base, WithEndpoints(eps...), WithAffinity(balancer.Affinity{}),
		WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1}),
		WithHealth(health.Config{ConsecutiveFailures: 1}))
	require.NoError(t, err)
	defer tr.Close()
	send(t, tr, body, nil)
	assert.Equal(t, []string{first, second}, base.sent(), "the failover left the key's order")
	assert.Equal(t, health.Ejected, tr.State(first))
	send(t, tr, body, nil)
	assert.Equal(t, []string{second}, base.sent(), "the ejected replica was not skipped")
}

// The key is found once per call, however many attempts and tiers the
// call goes through, and the hook's key routes the call.
func TestAffinityKeyFoundOncePerCall(t *testing.T) {
	var calls atomic.Int64
	hook := func(r *http.Request, body []byte) (balancer.Key, bool) {
		calls.Add(1)
		if !bytes.Contains(body, []byte(`"model":"m"`)) {
			t.Errorf("the hook got body %.40q", body)
		}
		if s := r.Header.Get("Tenant"); s != "" {
			return balancer.SessionKey(s), true
		}
		return balancer.Key{}, false
	}
	base := &hostBase{down: map[string]bool{}}
	var small []Endpoint
	for i, e := range replicas(8) {
		base.down[e.Name] = i < 4 // the primary tier fails everywhere
		if i >= 4 {
			small = append(small, e)
		}
	}
	tr, err := NewTransport(base,
		WithTier(degrade.Tier{Name: "big"}, replicas(4)...),
		WithTier(degrade.Tier{Name: "small", Model: "s"}, small...),
		WithAffinity(balancer.Affinity{}), WithAffinityKey(hook),
		WithFailover(failover.Config{MaxAttempts: 3, BaseBackoff: -1, BudgetRatio: -1}),
		WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}))
	require.NoError(t, err)
	defer tr.Close()
	var fallbacks []string
	for i := range 12 {
		resp := send(t, tr, promptBody(nil, "short", "q"), http.Header{"Tenant": {"acme"}})
		assert.Equal(t, "small", resp.Header.Get(HeaderTier))
		sent := base.sent()
		require.Len(t, sent, 4, "call %d: %v", i, sent) // 3 on big, 1 on small
		fallbacks = append(fallbacks, sent[3])
	}
	assert.Equal(t, int64(12), calls.Load(), "the hook ran other than once per call")
	assert.Len(t, distinct(fallbacks), 1, "one tenant's calls spread over %v", distinct(fallbacks))
}

// A session (header, prompt_cache_key, or user when asked) wins over the
// prompt: one session's different prompts land on one replica.
func TestAffinitySessions(t *testing.T) {
	tests := []struct {
		name   string
		a      balancer.Affinity
		extra  map[string]any
		header http.Header
		sticks bool
	}{
		{"header", balancer.Affinity{SessionHeader: "x-session"}, nil, http.Header{"X-Session": {"s-1"}}, true},
		{"prompt_cache_key", balancer.Affinity{}, map[string]any{"prompt_cache_key": "conv-9"}, nil, true},
		{"user when asked", balancer.Affinity{SessionFromUser: true}, map[string]any{"user": "u-1"}, nil, true},
		{"user by default is no session", balancer.Affinity{}, map[string]any{"user": "u-1"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &hostBase{}
			tr := affinityTr(t, base, replicas(8), WithAffinity(tt.a))
			for doc := range 16 {
				send(t, tr, promptBody(tt.extra, document(doc), "q"), tt.header)
			}
			got := distinct(base.sent())
			if tt.sticks {
				assert.Len(t, got, 1, "one session's prompts spread over %v", got)
			} else {
				assert.Greater(t, len(got), 1, "different prompts stuck to %v", got)
			}
		})
	}
}

func TestAffinityOptionErrors(t *testing.T) {
	hook := func(*http.Request, []byte) (balancer.Key, bool) { return balancer.Key{}, false }
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"hook without affinity", []Option{WithAffinityKey(hook)}, "WithAffinityKey is set but no tier balances by affinity"},
		{"bad header", []Option{WithAffinity(balancer.Affinity{SessionHeader: "x session"})}, `SessionHeader "x session" is not a valid header name`},
		{"another policy", []Option{WithAffinity(balancer.Affinity{}), WithBalancer(balancer.Config{Policy: balancer.RoundRobin})}, "WithBalancer sets Policy round_robin"},
		{"both", []Option{WithAffinity(balancer.Affinity{}), WithBalancer(balancer.Config{Affinity: balancer.Affinity{Index: -1}})}, "Config.Affinity is set as well as WithAffinity"},
		{"bad field", []Option{WithAffinity(balancer.Affinity{MinBlocks: -1})}, "WithAffinity: balancer: Config.Affinity.MinBlocks -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTransport(&hostBase{}, append([]Option{WithEndpoints(replicas(2)...)}, tt.opts...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// BenchmarkRoundTripAffinity is BenchmarkRoundTripSturdy's call with
// prefix affinity on, for a 4 KiB prompt: what finding the key adds (the
// body read once for GetBody, the key's blocks and its context).
func BenchmarkRoundTripAffinity(b *testing.B) {
	body := promptBody(nil, document(1), "q")
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"off", nil}, {"prefix", []Option{WithAffinity(balancer.Affinity{})}}} {
		b.Run(tc.name, func(b *testing.B) {
			tr, err := NewTransport(stubTransport{}, append([]Option{WithEndpoints(replicas(8)...)}, tc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			req, err := http.NewRequest(http.MethodPost, chatPath, bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			runBenchReq(b, tr, req)
		})
	}
}
