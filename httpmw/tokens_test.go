package httpmw

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/ratelimit"
)

// A provider's token quota in its x-ratelimit-*-tokens headers paces the
// endpoint by tokens, with no Limit configured: a server saying 10k tokens
// a minute, answering calls that use 1k tokens (its usage) offered ten a
// second, serves about ten a minute, spread over it, and refuses none.
func TestToldTokenQuotaPacesTheEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		start := time.Now()
		var mu sync.Mutex
		level, at := 10_000.0, start
		var served []time.Time
		refused := 0
		url := mt.add(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			now := time.Now()
			level = min(10_000, level+now.Sub(at).Minutes()*10_000)
			at = now
			ok := level >= 1000
			if ok {
				level -= 1000
				served = append(served, now)
			} else {
				refused++
			}
			h := w.Header()
			h.Set("X-Ratelimit-Limit-Tokens", "10000")
			h.Set("X-Ratelimit-Remaining-Tokens", strconv.Itoa(int(level)))
			h.Set("X-Ratelimit-Reset-Tokens", time.Duration((10_000-level)/10_000*float64(time.Minute)).String())
			mu.Unlock()
			h.Set("Content-Type", "application/json")
			if !ok {
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			fmt.Fprint(w, `{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":990,"total_tokens":1000}}`)
		}))
		tr := newMemTr(t, mt, WithTier(degrade.Tier{}, ep("a", url, "")))
		limited := 0
		for time.Since(start) < 3*time.Minute {
			body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 40) + `"}]}`)
			req, err := http.NewRequest(http.MethodPost, chatPath, bytes.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := tr.RoundTrip(req)
			if errors.Is(err, ratelimit.ErrLimited) {
				limited++
			} else {
				require.NoError(t, err)
				readAll(t, resp)
			}
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		assert.Zero(t, refused, "the server's refusals")
		assert.Greater(t, limited, 1500, "calls paced locally")
		for m := range 3 {
			n := 0
			for _, at := range served {
				if d := at.Sub(start); d >= time.Duration(m)*time.Minute && d < time.Duration(m+1)*time.Minute {
					n++
				}
			}
			assert.LessOrEqual(t, n, 11, "minute %d", m)
			assert.GreaterOrEqual(t, n, 9, "minute %d", m)
		}
	})
}
