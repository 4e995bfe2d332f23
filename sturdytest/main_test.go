package sturdytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start serves cfg on loopback and returns a client with its own transport;
// both are cleaned up with the test.
func start(t *testing.T, cfg Config) (*Server, *http.Client) {
	t.Helper()
	s, err := StartLLM(cfg)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(s.URL(), "http://127.0.0.1:"), s.URL())
	tr := &http.Transport{}
	t.Cleanup(func() {
		s.Close()
		tr.CloseIdleConnections()
	})
	return s, &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type msg struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func chatBody(model string, stream bool, msgs ...string) []byte {
	req := map[string]any{"model": model}
	var ms []msg
	for _, m := range msgs {
		ms = append(ms, msg{Role: "user", Content: m})
	}
	if ms == nil {
		ms = []msg{{Role: "user", Content: "hi"}}
	}
	req["messages"] = ms
	if stream {
		req["stream"] = true
		req["stream_options"] = map[string]any{"include_usage": true}
	}
	b, _ := json.Marshal(req)
	return b
}

func newChatRequest(t *testing.T, url string, body []byte, headers ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// do posts a chat completion over the network and reads the whole body.
func do(t *testing.T, c *http.Client, url string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(newChatRequest(t, url, body, headers...))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// serve calls the handler directly (no sockets), for runs of many requests.
func serve(s *Server, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
	s.ServeHTTP(rec, req)
	return rec
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeError(t *testing.T, b []byte) apiError {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	return e
}

// readEvents reads server-sent events until the body ends; it returns
// the data payloads, the time each arrived, and the read error (nil on a
// clean end).
func readEvents(body io.Reader) ([]string, []time.Time, error) {
	var data []string
	var at []time.Time
	r := bufio.NewReader(body)
	for {
		line, err := r.ReadString('\n')
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok && strings.HasSuffix(line, "\n") {
			data = append(data, d)
			at = append(at, time.Now())
		}
		if err == io.EOF {
			return data, at, nil
		}
		if err != nil {
			return data, at, err
		}
	}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustGet(path string) *http.Request { return httptest.NewRequest(http.MethodGet, path, nil) }
