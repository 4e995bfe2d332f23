package httpmw

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
)

// loneServer answers like a single inference server: 503 to every
// second request it receives (alternating), or to all of them (down).
type loneServer struct {
	requests atomic.Int64
	down     atomic.Bool
}

func (s *loneServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	if s.down.Load() || n%2 == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"choices":[]}`))
}

// A tier of one endpoint is retried there (issue: a lone vLLM failing
// every other call failed 5 calls in 10): at least 99% of calls succeed.
// In a total outage, the retry budget bounds the attempts as it does for
// retries elsewhere.
func TestLoneEndpointRetriedThere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		srv := &loneServer{}
		u := mt.add(srv)
		// Defaults: the learning retry budget, health with ejection.
		tr, err := NewTransport(mt, WithTier(degrade.Tier{}, ep("vllm", u, "")))
		require.NoError(t, err)
		defer tr.Close()
		const calls = 200
		ok := 0
		for range calls {
			resp, err := tr.RoundTrip(chatReq(t, "m", false))
			if err == nil {
				if resp.StatusCode == http.StatusOK {
					ok++
				}
				readAll(t, resp)
			}
			time.Sleep(100 * time.Millisecond) // 10 calls a second
		}
		assert.GreaterOrEqual(t, ok, calls*99/100, "calls served")
		assert.LessOrEqual(t, srv.requests.Load(), int64(2*calls), "no call needed more than one retry")

		// Total outage: the learning budget falls to its floor (3 retries
		// a second over its 10 s window) once retries fail.
		srv.down.Store(true)
		outage := func(calls int) int64 {
			before := srv.requests.Load()
			for range calls {
				resp, err := tr.RoundTrip(chatReq(t, "m", false))
				var se *sturdy.Error
				switch {
				case err == nil:
					assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
					readAll(t, resp)
				case !errors.As(err, &se):
					t.Fatalf("err = %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			return srv.requests.Load() - before
		}
		first, second := outage(100), outage(100)
		st0 := tr.Stats().Failover[0]
		rest := outage(100)
		st1 := tr.Stats().Failover[0]
		retries, refused := st1.Retries-st0.Retries, st1.BudgetRefusals-st0.BudgetRefusals
		t.Logf("outage: %d, %d, %d requests for three times 100 calls; last 100: %d retries allowed, %d refused", first, second, rest, retries, refused)
		// While the budget's 10 s window still remembers retries that
		// succeeded, it allows more; once they have all failed, its floor
		// (3 a second, counted in whole-second buckets). Every request
		// beyond a call's first is a retry the budget allowed.
		assert.LessOrEqual(t, first, int64(150))
		assert.LessOrEqual(t, second, int64(150))
		assert.Equal(t, int64(100)+int64(retries), rest, "every retry came out of the budget")
		assert.LessOrEqual(t, retries, uint64(40), "the budget's floor")
		assert.Greater(t, refused, uint64(0), "the budget refused retries")
	})
}
