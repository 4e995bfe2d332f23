package httpmw

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sturdyai/sturdy"
)

// PeekLimit is how much of a 400 or 413 body Classify reads to tell a
// context-window error from other client errors.
const PeekLimit = 4 << 10

// StatusError is the error of an attempt that got an HTTP error status.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string {
	return "httpmw: status " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
}

// tooLargePhrases are the ways servers say the prompt exceeds the
// context window, lower-cased: OpenAI's code, vLLM, TGI, Anthropic,
// Bedrock, Gemini and llama.cpp wordings.
var tooLargePhrases = [][]byte{
	[]byte("context_length_exceeded"),
	[]byte("maximum context length"),
	[]byte("`inputs` tokens + `max_new_tokens` must be <="),
	[]byte("prompt is too long"),
	[]byte("input is too long"),
	[]byte("exceeds the maximum number of tokens"),
	[]byte("exceeds the available context size"),
}

// Classify is the default classification, by the outcome classes of
// package sturdy:
//
//   - err != nil: sturdy.ClassOf (refused or reset: Unavailable; timeouts:
//     Timeout; a canceled context: Canceled);
//   - 1xx–3xx: Success;
//   - 429, 529, and 503 with a wait hint: Overloaded, with the hint from
//     sturdy.RetryAfterFromHeader (read on these statuses only);
//   - other 5xx: Unavailable;
//   - 401, 403: Auth;
//   - 400 and 413 whose body says the context window is exceeded (OpenAI's
//     context_length_exceeded and the wordings of vLLM, TGI, Anthropic and
//     others): TooLarge. Classify reads at most PeekLimit bytes of such a
//     body and replaces resp.Body with one that gives the whole body;
//   - any other 4xx: Fatal.
func Classify(resp *http.Response, err error) sturdy.Outcome {
	if err != nil {
		return sturdy.Outcome{Class: sturdy.ClassOf(err), Err: err}
	}
	if resp == nil {
		return sturdy.Outcome{Class: sturdy.Unavailable, Err: errNoResponse}
	}
	code := resp.StatusCode
	switch {
	case code < 400:
		return sturdy.Outcome{Class: sturdy.Success}
	case code == http.StatusTooManyRequests || code == 529:
		ra, _ := sturdy.RetryAfterFromHeader(resp.Header, time.Now())
		return sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: ra, Err: &StatusError{code}}
	case code == http.StatusServiceUnavailable:
		if ra, ok := sturdy.RetryAfterFromHeader(resp.Header, time.Now()); ok {
			return sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: ra, Err: &StatusError{code}}
		}
		return sturdy.Outcome{Class: sturdy.Unavailable, Err: &StatusError{code}}
	case code >= 500:
		return sturdy.Outcome{Class: sturdy.Unavailable, Err: &StatusError{code}}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return sturdy.Outcome{Class: sturdy.Auth, Err: &StatusError{code}}
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
		if saysTooLarge(resp) {
			return sturdy.Outcome{Class: sturdy.TooLarge, Err: &StatusError{code}}
		}
	}
	return sturdy.Outcome{Class: sturdy.Fatal, Err: &StatusError{code}}
}

// saysTooLarge peeks at the body and puts it back whole.
func saysTooLarge(resp *http.Response) bool {
	if resp.Body == nil || resp.Body == http.NoBody {
		return false
	}
	var buf [PeekLimit]byte
	n, err := io.ReadFull(resp.Body, buf[:])
	peek := bytes.Clone(buf[:n])
	switch err {
	case nil:
		resp.Body = &prefixBody{prefix: peek, rc: resp.Body}
	case io.EOF, io.ErrUnexpectedEOF:
		// The whole body is in peek.
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(peek))
	default:
		resp.Body = &prefixBody{prefix: peek, rc: resp.Body, err: err}
	}
	lower := bytes.ToLower(peek)
	for _, p := range tooLargePhrases {
		if bytes.Contains(lower, p) {
			return true
		}
	}
	return false
}

// prefixBody gives prefix, then the rest of rc (or err once prefix is
// consumed, if reading rc already failed).
type prefixBody struct {
	prefix []byte
	rc     io.ReadCloser
	err    error
}

func (b *prefixBody) Read(p []byte) (int, error) {
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.rc.Read(p)
}

func (b *prefixBody) Close() error { return b.rc.Close() }
