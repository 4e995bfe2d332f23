package httpmw

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/sturdytest"
)

// newBase returns a fresh http.Transport whose idle connections are
// closed when the test ends, so that goleak sees no connection goroutine.
func newBase(t *testing.T) *http.Transport {
	t.Helper()
	b := &http.Transport{}
	t.Cleanup(b.CloseIdleConnections)
	return b
}

// testOpts are the options most tests share: deterministic round-robin
// balancing, retries without backoff or budget, and health that does not
// eject on its own (tests that want ejection say so).
func testOpts() []Option {
	return []Option{
		WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
		WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: -1}),
		WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
	}
}

func newTr(t *testing.T, opts ...Option) *Transport {
	t.Helper()
	tr, err := NewTransport(newBase(t), append(testOpts(), opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func startLLM(t *testing.T, cfg sturdytest.Config) *sturdytest.Server {
	t.Helper()
	s, err := sturdytest.StartLLM(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func ep(name, url string, key string) Endpoint {
	e := URL(name, url, nil)
	if key != "" {
		e.Header = http.Header{"Authorization": {"Bearer " + key}}
	}
	return e
}

const chatPath = "http://llm.invalid/v1/chat/completions"

func chatBody(model string, stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":    model,
		"stream":   stream,
		"messages": []map[string]string{{"role": "user", "content": "hello there"}},
	})
	return b
}

// chatReq is a POST with a replayable body (GetBody set by NewRequest).
func chatReq(t *testing.T, model string, stream bool) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, chatPath, bytes.NewReader(chatBody(model, stream)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer caller-key")
	return req
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return string(b)
}

// recorder is an httptest server that records what it received and
// answers with the handler's choice: a memRec on a real socket.
type recorder struct {
	*httptest.Server
	*memRec
	newConns atomic.Int64
}

func newRecorder(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *recorder {
	t.Helper()
	rec := &recorder{memRec: &memRec{h: h}}
	rec.Server = httptest.NewUnstartedServer(rec.memRec)
	rec.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.newConns.Add(1)
		}
	}
	rec.Start()
	t.Cleanup(rec.Close)
	return rec
}

func okJSON(w http.ResponseWriter, _ *http.Request, _ int) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"1","choices":[],"usage":{"total_tokens":7}}`)
}

func status(code int) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"error":{"message":"nope"}}`)
	}
}

// closedURL returns the URL of a listener that has been closed: connecting
// to it is refused.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// trackBody is a request body that records Close.
type trackBody struct {
	io.Reader
	closed atomic.Int32
}

func (b *trackBody) Close() error { b.closed.Add(1); return nil }
