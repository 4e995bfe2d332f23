package grpcmw

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/ratelimit"
)

// headerConn answers every unary call at once with header as its
// response headers, and counts the calls that asked for them.
type headerConn struct {
	header atomic.Pointer[metadata.MD]
	asked  atomic.Int64
}

func (h *headerConn) Invoke(_ context.Context, _ string, _, _ any, opts ...grpc.CallOption) error {
	for _, o := range opts {
		if o, ok := o.(grpc.HeaderCallOption); ok {
			h.asked.Add(1)
			*o.HeaderAddr = *h.header.Load()
		}
	}
	return nil
}

func (h *headerConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, nil
}

// An endpoint whose headers carry rate-limit fields has them read on
// every call; one whose headers do not, on one call in chain.ListenSample, until
// they do again.
func TestHeadersAreReadWhileTheySpeak(t *testing.T) {
	quiet := metadata.Pairs("server", "vllm")
	speaks := metadata.Pairs("x-ratelimit-limit-requests", "1000000000", "x-ratelimit-remaining-requests", "900000000",
		"x-ratelimit-reset-requests", "1s")
	for _, tc := range []struct {
		name      string
		opts      []Option
		header    metadata.MD
		calls     int
		asked     int64
		learnedGT float64
	}{
		{"speaks", nil, speaks, 200, 200, 0},
		{"quiet", nil, quiet, 640, 1 + (640-1)/chain.ListenSample, -1}, // the first call, then one in chain.ListenSample
		{"learning off", []Option{WithLimiter(ratelimit.Config{Learn: ratelimit.LearnConfig{Off: true}})}, speaks, 100, 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &headerConn{}
			hc.header.Store(&tc.header)
			c, err := New(append([]Option{WithEndpoints(Conn("a", hc))}, tc.opts...)...)
			require.NoError(t, err)
			defer c.Close()
			for range tc.calls {
				require.NoError(t, c.Invoke(context.Background(), "/m", nil, nil))
			}
			assert.Equal(t, tc.asked, hc.asked.Load())
			if tc.learnedGT >= 0 {
				assert.Greater(t, c.chain.LearnedRate("a"), tc.learnedGT)
			}
		})
	}

	// A quiet endpoint that starts to speak is heard within chain.ListenSample
	// calls, and from then on on every call.
	hc := &headerConn{}
	hc.header.Store(&quiet)
	c, err := New(WithEndpoints(Conn("a", hc)))
	require.NoError(t, err)
	defer c.Close()
	for range 10 {
		require.NoError(t, c.Invoke(context.Background(), "/m", nil, nil))
	}
	hc.header.Store(&speaks)
	for range chain.ListenSample {
		require.NoError(t, c.Invoke(context.Background(), "/m", nil, nil))
	}
	before := hc.asked.Load()
	for range 50 {
		require.NoError(t, c.Invoke(context.Background(), "/m", nil, nil))
	}
	assert.Equal(t, before+50, hc.asked.Load())
}
