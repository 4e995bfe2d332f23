package grpcmw

import (
	"context"
	"errors"
	"strings"
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

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/ratelimit"
)

// quota is a provider's request quota that several deployments share: a
// token bucket of rate requests a second holding 100 ms of them, which
// refuses a request it cannot pay for with RESOURCE_EXHAUSTED and a
// pushback of a second (as a 429 with Retry-After: 1).
type quota struct {
	rate float64

	mu       sync.Mutex
	level    float64
	at       time.Time
	attempts []time.Time // every request that reached it
	firstNo  time.Time   // its first refusal
}

func (q *quota) take() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	q.level = min(q.rate/10, q.level+now.Sub(q.at).Seconds()*q.rate)
	q.at = now
	q.attempts = append(q.attempts, now)
	if q.level >= 1 {
		q.level--
		return nil
	}
	if q.firstNo.IsZero() {
		q.firstNo = now
	}
	return status.Error(codes.ResourceExhausted, "quota")
}

// deployment is one endpoint drawing on q.
type deployment struct{ q *quota }

func (d deployment) Invoke(_ context.Context, _ string, _, _ any, opts ...grpc.CallOption) error {
	err := d.q.take()
	if err != nil {
		for _, o := range opts {
			if o, ok := o.(grpc.TrailerCallOption); ok {
				*o.TrailerAddr = metadata.Pairs(sturdy.MetadataRetryPushbackMs, "1000")
			}
		}
	}
	return err
}

func (deployment) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("unary only")
}

// Two deployments behind one provider key, offered twice the key's quota
// for a minute: with one QuotaKey they are paced as one, and after the
// first refusal together send at most 1.1 times the quota while serving
// at least 0.8 times it. (Without it, each learns its own rate from the
// refusals the other causes; the log shows both for comparison.)
func TestQuotaKeySharesOnePace(t *testing.T) {
	for _, shared := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			q := &quota{rate: 100, level: 10, at: time.Now()}
			a, b := Conn("a", deployment{q}), Conn("b", deployment{q})
			if shared {
				a.QuotaKey, b.QuotaKey = "org-1", "org-1"
			}
			c, err := New(WithEndpoints(a, b), WithFailover(failover.Config{MaxAttempts: 2, BudgetRatio: -1, BaseBackoff: -1}))
			require.NoError(t, err)
			defer c.Close()
			start := time.Now()
			served := 0
			for time.Since(start) < time.Minute {
				if err := c.Invoke(context.Background(), "/m", nil, nil); err == nil {
					served++
				}
				time.Sleep(5 * time.Millisecond) // 200 calls a second
			}
			end := time.Now()
			q.mu.Lock()
			defer q.mu.Unlock()
			require.False(t, q.firstNo.IsZero(), "the quota never refused")
			n := 0
			for _, at := range q.attempts {
				if at.After(q.firstNo) {
					n++
				}
			}
			rate := float64(n) / end.Sub(q.firstNo).Seconds()
			t.Logf("shared=%v: %.1f attempts/s after the first refusal (quota %v/s), %d served; learned a %.1f, b %.1f",
				shared, rate, q.rate, served, c.chain.LearnedRate("a"), c.chain.LearnedRate("b"))
			if shared {
				assert.LessOrEqual(t, rate, 1.1*q.rate)
				// Not by starving: most of the quota is used.
				assert.GreaterOrEqual(t, float64(served)/time.Minute.Seconds(), 0.8*q.rate)
				assert.Equal(t, c.chain.LearnedRate("a"), c.chain.LearnedRate("b"), "one learned rate")
			}
		})
	}
}

// Endpoints that share a QuotaKey share its Limit: two different ones are
// a configuration error naming both.
func TestQuotaKeyLimitsMustAgree(t *testing.T) {
	a, b := Conn("a", nopConnForQuota{}), Conn("b", nopConnForQuota{})
	a.QuotaKey, b.QuotaKey = "org-1", "org-1"
	a.Limit = ratelimit.Limit{RequestsPerSecond: 10}
	b.Limit = ratelimit.Limit{RequestsPerSecond: 20}
	_, err := New(WithEndpoints(a, b))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `endpoints "a" and "b" share QuotaKey "org-1" but their Limits differ`)
	assert.True(t, strings.HasPrefix(err.Error(), "grpcmw: "), err.Error())

	// One Limit, given on one endpoint, paces both.
	b.Limit = ratelimit.Limit{}
	a.Limit = ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}
	c, err := New(WithEndpoints(a, b), WithFailover(failover.Config{MaxAttempts: 2, BudgetRatio: -1, BaseBackoff: -1}))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Invoke(context.Background(), "/m", nil, nil))
	err = c.Invoke(context.Background(), "/m", nil, nil)
	assert.ErrorIs(t, err, ratelimit.ErrLimited, "the second call, on either endpoint")
}

type nopConnForQuota struct{}

func (nopConnForQuota) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return nil
}
func (nopConnForQuota) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("unary only")
}

// Two Clients (two groups of a Router, say) with one shared Store share a
// QuotaKey's bucket: the quota's one call a minute, spent through one,
// refuses the other's.
func TestQuotaKeyAcrossClientsWithASharedStore(t *testing.T) {
	store := ratelimit.NewMemoryStore(0)
	newQuotaClient := func(name string) *Client {
		ep := Conn(name, nopConnForQuota{})
		ep.QuotaKey, ep.Limit = "org-1", ratelimit.Limit{RequestsPerSecond: 1.0 / 60, Burst: 1}
		c, err := New(WithEndpoints(ep), WithLimiter(ratelimit.Config{Store: store}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	chat, embed := newQuotaClient("chat-deployment"), newQuotaClient("embed-deployment")
	require.NoError(t, chat.Invoke(context.Background(), "/m", nil, nil))
	assert.ErrorIs(t, embed.Invoke(context.Background(), "/m", nil, nil), ratelimit.ErrLimited)
}
