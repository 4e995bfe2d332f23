package grpcmw

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy/ratelimit"
)

// tokenConn is a provider with a token bucket of limit tokens a minute,
// full at the start, that charges every call cost tokens and reports the
// bucket in OpenAI's x-ratelimit-*-tokens response headers; a call the
// bucket cannot pay for is refused with RESOURCE_EXHAUSTED.
type tokenConn struct {
	limit, cost float64

	mu      sync.Mutex
	level   float64
	at      time.Time
	served  []time.Time
	refused int
}

func (s *tokenConn) Invoke(_ context.Context, _ string, _, _ any, opts ...grpc.CallOption) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.level = min(s.limit, s.level+now.Sub(s.at).Minutes()*s.limit)
	s.at = now
	ok := s.level >= s.cost
	if ok {
		s.level -= s.cost
		s.served = append(s.served, now)
	} else {
		s.refused++
	}
	reset := time.Duration((s.limit - s.level) / s.limit * float64(time.Minute))
	md := metadata.Pairs("x-ratelimit-limit-tokens", strconv.Itoa(int(s.limit)),
		"x-ratelimit-remaining-tokens", strconv.Itoa(int(s.level)), "x-ratelimit-reset-tokens", reset.String())
	for _, o := range opts {
		if o, ok := o.(grpc.HeaderCallOption); ok {
			*o.HeaderAddr = md
		}
	}
	if !ok {
		return status.Error(codes.ResourceExhausted, "tokens")
	}
	return nil
}

func (s *tokenConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("unary only")
}

// Token quotas in the response metadata pace an endpoint by tokens: a
// server saying 10k tokens a minute, with calls of 1k tokens (WithTokens'
// estimate) offered ten a second, serves about ten calls a minute, spread
// over it, and refuses none.
func TestToldTokensPaceAnEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		srv := &tokenConn{limit: 10_000, cost: 1000, level: 10_000, at: start}
		thousand := func(string, any) int64 { return 1000 }
		c, err := New(WithEndpoints(Conn("a", srv)), WithTokens(thousand, thousand))
		require.NoError(t, err)
		defer c.Close()
		limited := 0
		for time.Since(start) < 3*time.Minute {
			err := c.Invoke(context.Background(), "/m", nil, nil)
			if errors.Is(err, ratelimit.ErrLimited) {
				limited++
			} else {
				require.NoError(t, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		assert.Zero(t, srv.refused, "the server's refusals")
		assert.Greater(t, limited, 1500, "calls paced locally")
		for m := range 3 {
			n := 0
			for _, at := range srv.served {
				if d := at.Sub(start); d >= time.Duration(m)*time.Minute && d < time.Duration(m+1)*time.Minute {
					n++
				}
			}
			assert.LessOrEqual(t, n, 11, "minute %d", m)
			assert.GreaterOrEqual(t, n, 9, "minute %d", m)
		}
		for i := 2; i < len(srv.served); i++ {
			assert.Greater(t, srv.served[i].Sub(srv.served[i-2]), 5*time.Second, "calls %d-%d", i-2, i)
		}
	})
}
