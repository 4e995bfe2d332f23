package httpmw

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
)

// chunked hands out its chunks one Read at a time and counts the Reads.
type chunked struct {
	chunks []string
	reads  int
}

func (c *chunked) Read(p []byte) (int, error) {
	c.reads++
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *chunked) Close() error { return nil }

// answersWith answers every request 200 with body, of length n (-1:
// unknown), typed ct.
type answersWith struct {
	body *chunked
	n    int64
	ct   string
}

func (a answersWith) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {a.ct}}, Body: a.body, ContentLength: a.n, Request: r}, nil
}

// A plain answer's head (what the attempt read before it won) is its
// first byte. With a known length the caller's first Read gets the rest
// that has come with it; without, it gets the head alone and no Read waits
// on the server for more (a stream of unknown length may be slow to send
// its next chunk). An event stream's head is a wide one.
func TestHeadIsHandedOutWithTheRestOfAKnownLength(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n         int64
		ct        string
		firstRead string
		baseReads int // by the attempt and the caller's first Read
	}{
		{"known length", 11, "application/json", `{"a":"bcd"`, 2},
		{"unknown length", -1, "application/json", `{`, 1},
		{"event stream", -1, "text/event-stream", `{"a":"bcd"`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &chunked{chunks: []string{`{"a":"bcd"`, `}`}}
			tr, err := NewTransport(answersWith{body: body, n: tc.n, ct: tc.ct},
				WithTier(degrade.Tier{Name: "t"}, URL("a", "http://127.0.0.1:1", nil)),
				WithoutStreamTerminator())
			require.NoError(t, err)
			defer tr.Close()
			req, err := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(`{}`))
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			buf := make([]byte, 64)
			n, err := resp.Body.Read(buf)
			require.NoError(t, err)
			assert.Equal(t, tc.firstRead, string(buf[:n]))
			assert.Equal(t, tc.baseReads, body.reads)
			rest, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, `{"a":"bcd"}`, tc.firstRead+string(rest))
			require.NoError(t, resp.Body.Close())
		})
	}
}
