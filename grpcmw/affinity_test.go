package grpcmw_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
)

// promptOf is the affinity hook of these tests: a request's payload is its
// prompt.
func promptOf(_ context.Context, _ string, req any) (balancer.Key, bool) {
	var body []byte
	switch r := req.(type) {
	case *testpb.SimpleRequest:
		body = r.GetPayload().GetBody()
	case *testpb.StreamingOutputCallRequest:
		body = r.GetPayload().GetBody()
	default:
		return balancer.Key{}, false
	}
	return balancer.PromptKey("m", "", string(body), 0), true
}

// document returns 4 KiB of text peculiar to i: 16 blocks of 256 bytes,
// past the default MinBlocks of 8.
func document(i int) string {
	return strings.Repeat(fmt.Sprintf("document %d says something of its own. ", i), 200)[:4096]
}

type fleet struct {
	servers []*testServer
	eps     []grpcmw.Endpoint
}

// startFleet starts n bufconn servers named r0, r1, ….
func startFleet(t *testing.T, n int) *fleet {
	f := &fleet{}
	for i := range n {
		s := startBuf(t, fmt.Sprintf("r%d", i))
		f.servers = append(f.servers, s)
		f.eps = append(f.eps, grpcmw.Conn(s.id, s.dial(t)))
	}
	return f
}

func (f *fleet) without(name string) []grpcmw.Endpoint {
	return slices.DeleteFunc(slices.Clone(f.eps), func(e grpcmw.Endpoint) bool { return e.Name == name })
}

func affinityClient(t *testing.T, eps []grpcmw.Endpoint, opts ...grpcmw.Option) *grpcmw.Client {
	return newClient(t, append([]grpcmw.Option{grpcmw.WithEndpoints(eps...),
		grpcmw.WithFailover(noBudget(t, 3)), grpcmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
		grpcmw.WithAffinity(balancer.Affinity{}), grpcmw.WithAffinityKey(promptOf)}, opts...)...)
}

func served(t *testing.T, c *grpcmw.Client, ctx context.Context, body string) string {
	t.Helper()
	var resp testpb.SimpleResponse
	require.NoError(t, c.Invoke(ctx, "/grpc.testing.TestService/UnaryCall", req(body), &resp))
	return resp.GetServerId()
}

// Calls whose hook gives the same prompt land on one replica, call after
// call and from two Clients that share nothing; a stream with that prompt
// too; different prompts spread, and short ones go by P2C.
func TestAffinitySamePromptSameReplica(t *testing.T) {
	f := startFleet(t, 8)
	c1 := affinityClient(t, f.eps)
	c2 := affinityClient(t, startFleetConns(t, f))
	used := map[string]bool{}
	ctx := context.Background()
	for doc := range 12 {
		var got []string
		for q := range 3 {
			got = append(got, served(t, c1, ctx, document(doc)+fmt.Sprint(q)), served(t, c2, ctx, document(doc)+"x"+fmt.Sprint(q)))
		}
		st, err := c1.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/grpc.testing.TestService/StreamingOutputCall")
		require.NoError(t, err)
		require.NoError(t, st.SendMsg(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(document(doc))}}))
		require.NoError(t, st.CloseSend())
		var m testpb.StreamingOutputCallResponse
		require.NoError(t, st.RecvMsg(&m))
		got = append(got, strings.SplitN(string(m.GetPayload().GetBody()), ":", 2)[0])
		for st.RecvMsg(&m) != io.EOF {
		}
		for _, s := range got {
			assert.Equal(t, got[0], s, "document %d went to %v", doc, got)
		}
		used[got[0]] = true
	}
	assert.Greater(t, len(used), 2, "12 documents on %d replicas", len(used))

	var short []string
	for range 40 {
		short = append(short, served(t, c1, ctx, "a short prompt"))
	}
	slices.Sort(short)
	assert.Greater(t, len(slices.Compact(short)), 1, "a short prompt stuck to one replica")
}

// startFleetConns dials f's servers again: a second client's own conns.
func startFleetConns(t *testing.T, f *fleet) []grpcmw.Endpoint {
	var eps []grpcmw.Endpoint
	for _, s := range f.servers {
		eps = append(eps, grpcmw.Conn(s.id, s.dial(t)))
	}
	return eps
}

// A failover goes to the key's next replica, the one a Client without the
// failed replica picks first; once ejected, the replica is skipped. The
// hook runs once per call however many attempts and tiers it takes.
func TestAffinityFailoverFollowsTheKeysOrder(t *testing.T) {
	f := startFleet(t, 8)
	ctx := context.Background()
	body := document(7)
	first := served(t, affinityClient(t, f.eps), ctx, body)
	second := served(t, affinityClient(t, f.without(first)), ctx, body)
	for _, s := range f.servers {
		s.calls.Store(0)
		if s.id == first {
			s.set(behavior{code: codes.Unavailable})
		}
	}
	var hooks atomic.Int64
	hook := func(ctx context.Context, method string, req any) (balancer.Key, bool) {
		hooks.Add(1)
		return promptOf(ctx, method, req)
	}
	c := newClient(t, grpcmw.WithEndpoints(f.eps...), grpcmw.WithFailover(noBudget(t, 3)),
		grpcmw.WithHealth(health.Config{ConsecutiveFailures: 1}),
		grpcmw.WithAffinity(balancer.Affinity{}), grpcmw.WithAffinityKey(hook))
	assert.Equal(t, second, served(t, c, ctx, body), "the failover left the key's order")
	assert.Equal(t, health.Ejected, c.State(first))
	assert.Equal(t, second, served(t, c, ctx, body))
	for _, s := range f.servers {
		want := map[string]int64{first: 1, second: 2}[s.id]
		assert.Equal(t, want, s.calls.Load(), "calls to %s", s.id)
	}
	assert.Equal(t, int64(2), hooks.Load(), "the hook ran other than once per call")
}

// The hook runs once per call even when the call falls back to another
// tier, which routes by the same key.
func TestAffinityKeyFoundOncePerCallAcrossTiers(t *testing.T) {
	f := startFleet(t, 8)
	for _, s := range f.servers[:4] {
		s.set(behavior{code: codes.Unavailable})
	}
	var hooks atomic.Int64
	hook := func(ctx context.Context, method string, req any) (balancer.Key, bool) {
		hooks.Add(1)
		return promptOf(ctx, method, req)
	}
	c := newClient(t, grpcmw.WithTier(degrade.Tier{Name: "big"}, f.eps[:4]...), grpcmw.WithTier(degrade.Tier{Name: "small"}, f.eps[4:]...),
		grpcmw.WithFailover(noBudget(t, 3)), grpcmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
		grpcmw.WithAffinity(balancer.Affinity{}), grpcmw.WithAffinityKey(hook))
	var got []string
	for range 10 {
		got = append(got, served(t, c, context.Background(), document(3)))
	}
	assert.Equal(t, int64(10), hooks.Load(), "the hook ran other than once per call")
	slices.Sort(got)
	assert.Len(t, slices.Compact(got), 1, "one prompt's fallbacks spread")
}

// A session in the outgoing metadata keeps one session's calls on one
// replica, whatever their prompts, when the hook gives no key.
func TestAffinitySessionMetadata(t *testing.T) {
	f := startFleet(t, 8)
	c := newClient(t, grpcmw.WithEndpoints(f.eps...), grpcmw.WithAffinity(balancer.Affinity{SessionHeader: "X-Session"}))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-session", "s-1")
	var got []string
	for doc := range 16 {
		got = append(got, served(t, c, ctx, document(doc)))
	}
	slices.Sort(got)
	assert.Len(t, slices.Compact(got), 1, "one session spread over replicas")
}

func TestAffinityOptionErrors(t *testing.T) {
	cc := startBuf(t, "a").dial(t)
	tests := []struct {
		name string
		opts []grpcmw.Option
		want string
	}{
		{"hook without affinity", []grpcmw.Option{grpcmw.WithAffinityKey(promptOf)}, "WithAffinityKey is set but no tier balances by affinity"},
		{"bad key", []grpcmw.Option{grpcmw.WithAffinity(balancer.Affinity{SessionHeader: "x session"})}, `SessionHeader "x session" is not a valid metadata key`},
		{"another policy", []grpcmw.Option{grpcmw.WithAffinity(balancer.Affinity{}), grpcmw.WithBalancer(balancer.Config{Policy: balancer.LeastOutstanding})}, "WithBalancer sets Policy least_outstanding"},
		{"bad field", []grpcmw.Option{grpcmw.WithAffinity(balancer.Affinity{LoadBound: nan()})}, "WithAffinity: balancer: Config.Affinity.LoadBound is NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := grpcmw.New(append([]grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc))}, tt.opts...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func nan() float64 { zero := 0.0; return zero / zero }
