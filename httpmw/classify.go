package httpmw

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/toolarge"
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

// quotaPhrases mark a 429 whose key has no quota left (OpenAI's
// insufficient_quota): no wait makes it pass, so it is the endpoint's
// credential that cannot be used (Auth), not saturation.
var quotaPhrases = [][]byte{[]byte("insufficient_quota")}

// Classify is the default classification, by the outcome classes of
// package sturdy:
//
//   - err != nil: sturdy.ClassOf (refused or reset: Unavailable; timeouts:
//     Timeout; a canceled context: Canceled);
//   - 1xx–3xx: Success;
//   - 429 and 529: Overloaded, with the wait hint from
//     sturdy.RetryAfterFromHeader (read on these statuses only), except a
//     429 whose body says insufficient_quota (the key has no quota left):
//     Auth;
//   - 503 with a wait hint: Overloaded; other 5xx (OpenAI's and Gemini's
//     "overloaded" 503s included: without a wait hint, a 503 cannot be
//     told from a server that is not ready): Unavailable;
//   - 408: Timeout;
//   - 401, 403: Auth;
//   - 400 and 413 whose body says the context window is exceeded (the
//     wordings of OpenAI, Azure OpenAI, vLLM, SGLang, TGI, Anthropic,
//     Gemini, llama.cpp): TooLarge; when the body names the window
//     ("maximum context length is 4096 tokens"), the fallback chain learns
//     it for the tier and moves the call to a tier whose window is larger
//     or unknown;
//   - any other 4xx: Fatal.
//
// Classify reads at most PeekLimit bytes of a 400, 413 or 429 body
// and replaces resp.Body with one that gives the whole body.
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
	case code == http.StatusTooManyRequests && bodySays(resp, quotaPhrases):
		return sturdy.Outcome{Class: sturdy.Auth, Err: &StatusError{code}}
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
	case code == http.StatusRequestTimeout:
		return sturdy.Outcome{Class: sturdy.Timeout, Err: &StatusError{code}}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return sturdy.Outcome{Class: sturdy.Auth, Err: &StatusError{code}}
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
		if ok, window := saysTooLarge(peekBody(resp)); ok {
			return sturdy.Outcome{Class: sturdy.TooLarge, Err: windowErr(&StatusError{code}, window)}
		}
	}
	return sturdy.Outcome{Class: sturdy.Fatal, Err: &StatusError{code}}
}

// windowErr wraps err with the context window a too-large answer named,
// for the fallback chain; err itself when it named none.
func windowErr(err error, window int) error {
	if window <= 0 {
		return err
	}
	return &chain.WindowError{Limit: window, Err: err}
}

// saysTooLarge reports whether an answer (lower-cased) says the context
// window is exceeded, and the window it names, if any.
func saysTooLarge(lower []byte) (bool, int) {
	if !toolarge.Says(lower) {
		return false, 0
	}
	return true, toolarge.Window(lower)
}

// bodySays reports whether the (lower-cased) start of resp's body holds
// one of phrases.
func bodySays(resp *http.Response, phrases [][]byte) bool {
	lower := peekBody(resp)
	for _, p := range phrases {
		if bytes.Contains(lower, p) {
			return true
		}
	}
	return false
}

// peekBody returns the first PeekLimit bytes of resp's body, lower-cased,
// and puts the body back whole.
func peekBody(resp *http.Response) []byte {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	if pb, ok := resp.Body.(*peekedBody); ok {
		return pb.lower // peeked already (a 429 checked for its quota)
	}
	var buf [PeekLimit]byte
	n, err := io.ReadFull(resp.Body, buf[:])
	peek := bytes.Clone(buf[:n])
	var rc io.ReadCloser
	switch err {
	case nil:
		rc = &prefixBody{prefix: peek, rc: resp.Body}
	case io.EOF, io.ErrUnexpectedEOF:
		// The whole body is in peek.
		_ = resp.Body.Close()
		rc = io.NopCloser(bytes.NewReader(peek))
	default:
		rc = &prefixBody{prefix: peek, rc: resp.Body, err: err}
	}
	lower := bytes.ToLower(peek)
	resp.Body = &peekedBody{ReadCloser: rc, lower: lower}
	return lower
}

// peekedBody is a body whose start peekBody has read already.
type peekedBody struct {
	io.ReadCloser
	lower []byte
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

// ErrStreamError is the outcome error of an attempt whose event stream
// began with an error event instead of an answer: a server that had sent
// its 200 and headers before it failed (vLLM's and SGLang's
// `data: {"error": {...}}`, Anthropic's `event: error`). Nothing reached
// the caller yet, so the call fails over or falls back as the event's
// class says.
var ErrStreamError = errors.New("httpmw: the event stream began with an error event")

// errorEventStarts are how an event stream's first bytes begin when its
// first event is an error.
var errorEventStarts = [][]byte{
	[]byte("event: error"), []byte("event:error"),
	[]byte(`data: {"error"`), []byte(`data:{"error"`),
	[]byte(`data: {"type": "error"`), []byte(`data: {"type":"error"`),
	[]byte(`data: {"object": "error"`), []byte(`data: {"object":"error"`),
}

// startsWithErrorEvent reports whether an event stream's first bytes
// begin an error event.
func startsWithErrorEvent(head []byte) bool {
	head = bytes.TrimLeft(head, "\r\n")
	for _, p := range errorEventStarts {
		if bytes.HasPrefix(head, p) {
			return true
		}
	}
	return false
}

// classifyErrorEvent classifies an error event (its text, lower-cased):
// a context-window wording is TooLarge (with the window it names), an
// overload or rate limit Overloaded, a "code" of 401/403 Auth and of
// another 4xx Fatal; any other error Unavailable, as a 5xx would be.
func classifyErrorEvent(lower []byte) sturdy.Outcome {
	if ok, window := saysTooLarge(lower); ok {
		return sturdy.Outcome{Class: sturdy.TooLarge, Err: windowErr(ErrStreamError, window)}
	}
	for _, p := range [][]byte{[]byte("overloaded"), []byte("rate_limit"), []byte("resource_exhausted")} {
		if bytes.Contains(lower, p) {
			return sturdy.Outcome{Class: sturdy.Overloaded, Err: ErrStreamError}
		}
	}
	switch code := eventCode(lower); {
	case code == 429 || code == 529:
		return sturdy.Outcome{Class: sturdy.Overloaded, Err: ErrStreamError}
	case code == 401 || code == 403:
		return sturdy.Outcome{Class: sturdy.Auth, Err: ErrStreamError}
	case code == 408:
		return sturdy.Outcome{Class: sturdy.Timeout, Err: ErrStreamError}
	case code >= 400 && code < 500:
		return sturdy.Outcome{Class: sturdy.Fatal, Err: ErrStreamError}
	}
	return sturdy.Outcome{Class: sturdy.Unavailable, Err: ErrStreamError}
}

// eventCode returns the number after an error event's "code": (vLLM and
// SGLang put the HTTP status there), or 0.
func eventCode(lower []byte) int {
	i := bytes.Index(lower, []byte(`"code":`))
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range bytes.TrimLeft(lower[i+len(`"code":`):], " \"") {
		if c < '0' || c > '9' || n > 999 {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// readFirstEvent reads from rc, after head (the bytes read already), up
// to the end of the first event (a blank line) or PeekLimit bytes in all.
// It returns every byte read and the read error, if any.
func readFirstEvent(rc io.Reader, head []byte) ([]byte, error) {
	buf := make([]byte, len(head), PeekLimit)
	copy(buf, head)
	for len(buf) < PeekLimit && !eventEnded(buf) {
		n, err := rc.Read(buf[len(buf):PeekLimit])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func eventEnded(b []byte) bool {
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\r\n\r\n"))
}
