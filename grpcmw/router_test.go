package grpcmw_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/ratelimit"
)

// modelOf reads the model a call names from its "model" metadata (the
// test messages have no model field).
func modelOf(ctx context.Context, _ string, _ any) string {
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md.Get("model"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func withModel(m string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "model", m)
}

func TestRouterRoutesByGroup(t *testing.T) {
	big, big2, small, other := startBuf(t, "big"), startBuf(t, "big2"), startBuf(t, "small"), startBuf(t, "other")
	r, err := grpcmw.NewRouter([]grpcmw.Group{
		{Name: "llama-70b", Aliases: []string{"smart"}, Options: []grpcmw.Option{
			grpcmw.WithTier(degrade.Tier{Name: "70b", Model: "llama-70b"}, grpcmw.Conn("big", big.dial(t)), grpcmw.Conn("big2", big2.dial(t))),
			grpcmw.WithTier(degrade.Tier{Name: "8b", Model: "llama-8b"}, grpcmw.Conn("small", small.dial(t))),
		}},
		{Name: "embed", Options: []grpcmw.Option{grpcmw.WithTier(degrade.Tier{Name: "embed"}, grpcmw.Conn("other", other.dial(t)))}},
	}, modelOf, roundRobin, grpcmw.WithFailover(noBudget(t, 2)))
	require.NoError(t, err)
	defer r.Close()
	stub := grpc_testing.NewTestServiceClient(r)

	for _, m := range []string{"llama-70b", "smart", "embed"} {
		res, err := stub.UnaryCall(withModel(m), req("x"))
		require.NoError(t, err, m)
		if m == "embed" {
			assert.Equal(t, "other", res.GetServerId())
		} else {
			assert.Contains(t, []string{"big", "big2"}, res.GetServerId())
		}
	}
	// The big group fails: it falls back to its own small tier; the
	// embeddings group is never its fallback.
	big.set(behavior{code: codes.Unavailable})
	big2.set(behavior{code: codes.Unavailable})
	res, err := stub.UnaryCall(withModel("llama-70b"), req("x"))
	require.NoError(t, err)
	assert.Equal(t, "small", res.GetServerId())
	other.set(behavior{code: codes.Unavailable})
	_, err = stub.UnaryCall(withModel("embed"), req("x"))
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.EqualValues(t, 1, small.calls.Load())
	assert.EqualValues(t, 1, r.Group("llama-70b").Stats().Served[1])

	// A stream goes by its context's model too.
	st, err := stub.StreamingOutputCall(withModel("smart"), &grpc_testing.StreamingOutputCallRequest{})
	require.NoError(t, err)
	_, _ = recvAll(t, st.Recv)

	_, err = stub.UnaryCall(withModel("o3"), req("x"))
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.True(t, errors.Is(err, grpcmw.ErrNoGroup), "%v", err)
	assert.Contains(t, err.Error(), `"o3" (groups: llama-70b, embed)`)
}

func TestRouterPassThroughAndErrors(t *testing.T) {
	a := startBuf(t, "a")
	r, err := grpcmw.NewRouter([]grpcmw.Group{{Name: "*", Options: []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)))}}}, modelOf)
	require.NoError(t, err)
	res, err := grpc_testing.NewTestServiceClient(r).UnaryCall(withModel("anything"), req("x"))
	require.NoError(t, err)
	assert.Equal(t, "a", res.GetServerId())
	require.NoError(t, r.Close())

	cc := startBuf(t, "b").dial(t)
	for _, tc := range []struct {
		name   string
		groups []grpcmw.Group
		key    grpcmw.GroupKey
		want   string
	}{
		{"no key", []grpcmw.Group{{Name: "m", Options: []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc))}}}, nil, "needs a GroupKey"},
		{"no groups", nil, modelOf, "no groups"},
		{"endpoint twice", []grpcmw.Group{
			{Name: "m", Options: []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc))}},
			{Name: "n", Options: []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc))}}}, modelOf, `endpoint name "a" is used in group "m" (#1) too`},
		{"bad group", []grpcmw.Group{{Name: "m"}}, modelOf, `group "m" (#1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := grpcmw.NewRouter(tc.groups, tc.key)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// An endpoint's own Limit passes it over for the others of its tier once
// spent.
func TestEndpointLimit(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	capped := grpcmw.Conn("a", a.dial(t))
	capped.Limit = ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 2}
	c := newClient(t, roundRobin, grpcmw.WithEndpoints(capped, grpcmw.Conn("b", b.dial(t))))
	stub := grpc_testing.NewTestServiceClient(c)
	for range 10 {
		_, err := stub.UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, a.calls.Load(), "its quota's burst")
	assert.EqualValues(t, 8, b.calls.Load())

	bad := grpcmw.Conn("x", a.dial(t))
	bad.Limit = ratelimit.Limit{Burst: -1}
	_, err := grpcmw.New(grpcmw.WithEndpoints(bad))
	assert.ErrorContains(t, err, `endpoint "x": Limit has a negative`)
}
