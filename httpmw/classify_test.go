package httpmw

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sturdyai/sturdy"
)

func response(code int, h http.Header, body string) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func TestClassifyTable(t *testing.T) {
	ra := http.Header{"Retry-After": {"2"}}
	tgi := "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`"
	cases := []struct {
		name  string
		resp  *http.Response
		err   error
		class sturdy.Class
		ra    time.Duration
	}{
		{"200", response(200, nil, "{}"), nil, sturdy.Success, 0},
		{"304", response(304, nil, ""), nil, sturdy.Success, 0},
		{"429 with retry-after", response(429, ra, ""), nil, sturdy.Overloaded, 2 * time.Second},
		{"429 without", response(429, nil, ""), nil, sturdy.Overloaded, 0},
		{"529", response(529, http.Header{"Retry-After-Ms": {"150"}}, ""), nil, sturdy.Overloaded, 150 * time.Millisecond},
		{"503 with retry-after", response(503, ra, ""), nil, sturdy.Overloaded, 2 * time.Second},
		{"503 without", response(503, nil, ""), nil, sturdy.Unavailable, 0},
		{"500 ignores retry-after", response(500, ra, ""), nil, sturdy.Unavailable, 0},
		{"502", response(502, nil, ""), nil, sturdy.Unavailable, 0},
		{"504", response(504, nil, ""), nil, sturdy.Unavailable, 0},
		{"401", response(401, nil, ""), nil, sturdy.Auth, 0},
		{"403", response(403, nil, ""), nil, sturdy.Auth, 0},
		{"400 openai context", response(400, nil, `{"error":{"code":"context_length_exceeded"}}`), nil, sturdy.TooLarge, 0},
		{"400 vllm", response(400, nil, `{"message":"This model's maximum context length is 4096 tokens."}`), nil, sturdy.TooLarge, 0},
		{"422 tgi is fatal", response(422, nil, tgi), nil, sturdy.Fatal, 0},
		{"400 tgi", response(400, nil, tgi), nil, sturdy.TooLarge, 0},
		{"413 anthropic", response(413, nil, `{"error":{"message":"Prompt is too long: 210000 tokens > 200000 maximum"}}`), nil, sturdy.TooLarge, 0},
		{"413 other", response(413, nil, "body too big"), nil, sturdy.Fatal, 0},
		{"400 other", response(400, nil, `{"error":"bad json"}`), nil, sturdy.Fatal, 0},
		{"404", response(404, nil, ""), nil, sturdy.Fatal, 0},
		{"429 is not read as too large", response(429, nil, "context_length_exceeded"), nil, sturdy.Overloaded, 0},
		{"refused", nil, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, sturdy.Unavailable, 0},
		{"reset", nil, &net.OpError{Op: "read", Err: syscall.ECONNRESET}, sturdy.Unavailable, 0},
		{"timeout", nil, context.DeadlineExceeded, sturdy.Timeout, 0},
		{"canceled", nil, context.Canceled, sturdy.Canceled, 0},
		{"eof", nil, io.ErrUnexpectedEOF, sturdy.Unavailable, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := Classify(tc.resp, tc.err)
			assert.Equal(t, tc.class, o.Class)
			assert.Equal(t, tc.ra, o.RetryAfter)
			if tc.class != sturdy.Success {
				assert.Error(t, o.Err)
			}
		})
	}
}

func TestClassifyGivesTheWholeBodyBack(t *testing.T) {
	long := `{"error":{"code":"context_length_exceeded","message":"` + strings.Repeat("x", 3*PeekLimit) + `"}}`
	for _, body := range []string{long, `{"error":"short"}`} {
		resp := response(400, nil, body)
		Classify(resp, nil)
		got, err := io.ReadAll(resp.Body)
		assert.NoError(t, err)
		assert.Equal(t, body, string(got))
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzClassify(f *testing.F) {
	f.Add(200, "", []byte("{}"))
	f.Add(429, "3", []byte(""))
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", []byte("x"))
	f.Add(400, "", []byte(`{"error":{"code":"context_length_exceeded"}}`))
	f.Add(413, "", bytes.Repeat([]byte("prompt is too long "), 400))
	f.Fuzz(func(t *testing.T, code int, retryAfter string, body []byte) {
		if code < 100 || code > 999 {
			return
		}
		cr := &countingReader{r: bytes.NewReader(body)}
		resp := &http.Response{StatusCode: code, Header: http.Header{"Retry-After": {retryAfter}}, Body: io.NopCloser(cr)}
		o := Classify(resp, nil)
		if cr.n > PeekLimit {
			t.Fatalf("read %d bytes, more than PeekLimit", cr.n)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("body not given back whole: %v", err)
		}
		if o.RetryAfter != 0 && o.Class != sturdy.Overloaded {
			t.Fatalf("retry-after %v on class %v", o.RetryAfter, o.Class)
		}
		if o.RetryAfter < 0 || o.RetryAfter > sturdy.MaxRetryAfter {
			t.Fatalf("retry-after %v out of range", o.RetryAfter)
		}
		want := map[bool]sturdy.Class{true: sturdy.Success}
		switch {
		case code < 400:
			if o.Class != want[true] {
				t.Fatalf("%d: %v", code, o.Class)
			}
		case code == 429 && o.Class == sturdy.Auth:
			if !bytes.Contains(bytes.ToLower(body), []byte("insufficient_quota")) {
				t.Fatalf("429 read as Auth without insufficient_quota")
			}
		case code == 429 || code == 529:
			if o.Class != sturdy.Overloaded {
				t.Fatalf("%d: %v", code, o.Class)
			}
		case code == 401 || code == 403:
			if o.Class != sturdy.Auth {
				t.Fatalf("%d: %v", code, o.Class)
			}
		case code >= 500 && code != 503:
			if o.Class != sturdy.Unavailable {
				t.Fatalf("%d: %v", code, o.Class)
			}
		case o.Class == sturdy.TooLarge && code != 400 && code != 413:
			t.Fatalf("%d: too large", code)
		}
		var se *StatusError
		if o.Class != sturdy.Success && !errors.As(o.Err, &se) {
			t.Fatalf("no StatusError: %v", o.Err)
		}
	})
}
