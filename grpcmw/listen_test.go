package grpcmw_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/ratelimit"
)

// rateLimitFields are the same request quota, 100 per window with 40
// left and 6 s to go, in each family of fields grpcmw reads: a server
// refilling 60 requests in 6 s accepts 10/s, and the endpoint is paced a
// little below (97%).
func rateLimitFields() map[string]metadata.MD {
	reset := time.Now().Add(6 * time.Second).UTC().Format(time.RFC3339Nano)
	return map[string]metadata.MD{
		"openai": metadata.Pairs("x-ratelimit-limit-requests", "100", "x-ratelimit-remaining-requests", "40",
			"x-ratelimit-reset-requests", "6s"),
		"anthropic": metadata.Pairs("anthropic-ratelimit-requests-limit", "100", "anthropic-ratelimit-requests-remaining", "40",
			"anthropic-ratelimit-requests-reset", reset),
		"ietf": metadata.Pairs("ratelimit-policy", `"default";q=100;w=60`, "ratelimit", `"default";r=40;t=6`),
	}
}

const toldRate = 0.97 * 10

// A unary call's response headers and trailer carry the server's
// rate-limit fields as gRPC metadata; the endpoint is paced at the rate
// they give, and calls beyond it are refused before they reach the server.
func TestRateLimitMetadataPacesUnaryCalls(t *testing.T) {
	for family, md := range rateLimitFields() {
		for _, where := range []string{"header", "trailer"} {
			t.Run(family+" in "+where, func(t *testing.T) {
				s := startBuf(t, "a")
				if where == "header" {
					s.set(behavior{header: md})
				} else {
					s.set(behavior{okTrailer: md})
				}
				c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", s.dial(t))))
				stub := testpb.NewTestServiceClient(c)
				_, err := stub.UnaryCall(context.Background(), req("x"))
				require.NoError(t, err)
				assert.InDelta(t, toldRate, grpcmw.LearnedRate(c, "a"), 0.3)

				// A burst right after: paced at ~10/s with a burst of one,
				// at most one more call goes before the next 100 ms.
				limited := 0
				for range 5 {
					_, err := stub.UnaryCall(context.Background(), req("x"))
					if err != nil {
						assert.ErrorIs(t, err, ratelimit.ErrLimited)
						assert.Equal(t, codes.ResourceExhausted, status.Code(err))
						limited++
					}
				}
				assert.GreaterOrEqual(t, limited, 3)
				assert.LessOrEqual(t, s.calls.Load(), int64(3))
			})
		}
	}
}

// A stream's rate-limit fields are read from its response headers, once
// its first message is there, and from its trailer when it ends.
func TestRateLimitMetadataPacesStreams(t *testing.T) {
	md := rateLimitFields()["openai"]
	for _, where := range []string{"header", "trailer"} {
		t.Run(where, func(t *testing.T) {
			s := startBuf(t, "a")
			if where == "header" {
				s.set(behavior{header: md})
			} else {
				s.set(behavior{okTrailer: md})
			}
			c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", s.dial(t))))
			st, err := testpb.NewTestServiceClient(c).StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
			require.NoError(t, err)
			_, err = st.Recv()
			require.NoError(t, err)
			if where == "header" {
				assert.InDelta(t, toldRate, grpcmw.LearnedRate(c, "a"), 0.3, "after the first message")
			} else {
				assert.Zero(t, grpcmw.LearnedRate(c, "a"), "before the trailer")
			}
			for {
				if _, err = st.Recv(); err != nil {
					break
				}
			}
			require.ErrorIs(t, err, io.EOF)
			assert.InDelta(t, toldRate, grpcmw.LearnedRate(c, "a"), 0.3)
		})
	}
}

// A RESOURCE_EXHAUSTED answer's trailer (trailers-only) is read too.
func TestRateLimitMetadataOnRefusal(t *testing.T) {
	s := startBuf(t, "a")
	s.set(behavior{code: codes.ResourceExhausted, trailer: metadata.Pairs("x-ratelimit-limit-requests", "100",
		"x-ratelimit-remaining-requests", "40", "x-ratelimit-reset-requests", "6s")})
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", s.dial(t))))
	_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
	require.Error(t, err)
	// The refusal itself cuts the learned rate below the told one.
	r := grpcmw.LearnedRate(c, "a")
	assert.Greater(t, r, 0.0)
	assert.LessOrEqual(t, r, toldRate+0.01)
}

// With learning off nothing is read or learned.
func TestRateLimitMetadataLearningOff(t *testing.T) {
	s := startBuf(t, "a")
	s.set(behavior{header: rateLimitFields()["openai"]})
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", s.dial(t))),
		grpcmw.WithLimiter(ratelimit.Config{Learn: ratelimit.LearnConfig{Off: true}}))
	for range 3 {
		_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
		require.False(t, errors.Is(err, ratelimit.ErrLimited))
		require.NoError(t, err)
	}
	assert.Zero(t, grpcmw.LearnedRate(c, "a"))
}
