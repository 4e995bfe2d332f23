package httpmw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sturdyai/sturdy/internal/body"
)

// Request headers that override the Transport's timeouts for one call.
// The Transport reads them and strips them before sending: no server sees
// them. A value is a Go duration ("90s", "5m") or a number of seconds
// ("90"); "0" or "off" turns the timeout off for the call. A value that
// is neither fails the call (class Fatal) with an error naming the header.
const (
	// HeaderTTFBTimeout overrides WithTTFBTimeout for one call.
	HeaderTTFBTimeout = "Sturdy-Ttfb-Timeout"
	// HeaderResponseTimeout overrides WithResponseTimeout for one call.
	HeaderResponseTimeout = "Sturdy-Response-Timeout"
)

// ErrResponseTimeout is the outcome error of an attempt of a non-streaming
// call that missed the response timeout (class Timeout).
var ErrResponseTimeout = errors.New("httpmw: no response within the response timeout")

// Timeouts override, for one call, the Transport's time-to-first-byte and
// response timeouts (WithTTFBTimeout, WithResponseTimeout). For each
// field, zero keeps the Transport's and a negative value turns the
// timeout off for the call.
type Timeouts struct {
	// TTFB bounds each attempt of a streaming call until its headers and
	// first body byte.
	TTFB time.Duration
	// Response bounds each attempt of a non-streaming call until its
	// answer starts (headers and first body byte).
	Response time.Duration
}

type timeoutsKey struct{}

// ContextWithTimeouts returns a context that carries to for the calls
// made with it: a reasoning model's request that may take minutes, or a
// chat turn that must start within seconds. The request headers
// HeaderTTFBTimeout and HeaderResponseTimeout, when present, win over it.
func ContextWithTimeouts(ctx context.Context, to Timeouts) context.Context {
	return context.WithValue(ctx, timeoutsKey{}, to)
}

// WithResponseTimeout fails over an attempt of a non-streaming call that
// has not delivered its response headers and first body byte within d
// (class Timeout, ErrResponseTimeout). An OpenAI-style server writes a
// non-streaming answer only once it has generated all of it, so d bounds
// the generation: give reasoning models minutes. The rest of the body is
// bounded by the caller's context. Zero (the default) means none; the
// caller's deadline and failover's AttemptTimeout still apply.
// ContextWithTimeouts and HeaderResponseTimeout override it per call.
func WithResponseTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.respTimeout = d })
}

// WithErrorResponses makes RoundTrip answer every call that fails without
// an HTTP answer from a server (refused or reset connections, timeouts,
// the local limits) with a gateway-style error response rather than an
// error: status 502, 504 or 429 (413 for a too-large call), an
// OpenAI-shaped JSON error body, X-Should-Retry: false and
// Sturdy-Attempts. CallError recovers the call's *sturdy.Error from it.
// Without the option this happens only for requests whose client says it
// retries on its own (HeaderRetryCount, which openai-go sends); other
// callers get the *sturdy.Error as RoundTrip's error.
func WithErrorResponses() Option {
	return optionFunc(func(c *config) { c.errResponses = true })
}

// callTimeout is the timeout of each attempt of one call, and the cause
// its expiry gives.
type callTimeout struct {
	d     time.Duration // 0: none
	cause error         // ErrTTFB or ErrResponseTimeout
	strip bool          // the request carries timeout headers to strip
}

// timeoutFor decides the attempts' timeout of the call: the stream's TTFB
// timeout or the non-streaming call's response timeout, each the
// Transport's unless the context (ContextWithTimeouts) or the request's
// headers override it. Whether the call streams is read from the request
// (Accept: text/event-stream, or a JSON body's top-level "stream": true)
// only when the two timeouts differ.
func (c *call) timeoutFor() (callTimeout, error) {
	t, req := c.t, c.req
	ttfb, resp := t.ttfb, t.respTimeout
	if v := req.Context().Value(timeoutsKey{}); v != nil {
		to := v.(Timeouts)
		ttfb, resp = override(ttfb, to.TTFB), override(resp, to.Response)
	}
	var ct callTimeout
	var err error
	if ttfb, ct.strip, err = headerTimeout(req.Header, HeaderTTFBTimeout, ttfb); err != nil {
		return ct, err
	}
	strip := ct.strip
	if resp, ct.strip, err = headerTimeout(req.Header, HeaderResponseTimeout, resp); err != nil {
		return ct, err
	}
	ct.strip = ct.strip || strip
	if ttfb == 0 && resp == 0 {
		return ct, nil
	}
	if c.streams() {
		ct.d, ct.cause = ttfb, ErrTTFB
	} else {
		ct.d, ct.cause = resp, ErrResponseTimeout
	}
	return ct, nil
}

// headerTimeout returns the timeout that h's header name sets, and true,
// or d and false when h has no such header.
func headerTimeout(h http.Header, name string, d time.Duration) (time.Duration, bool, error) {
	v := h[name]
	if len(v) == 0 {
		return d, false, nil
	}
	d, err := parseTimeout(name, v[0])
	return d, true, err
}

func override(d, to time.Duration) time.Duration {
	switch {
	case to < 0:
		return 0
	case to > 0:
		return to
	}
	return d
}

func parseTimeout(name, v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "off") {
		return 0, nil
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 1e9 {
		return time.Duration(s * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("httpmw: request header %s is %q; give a duration such as \"90s\" or a number of seconds", name, v)
}

// streams reports whether the call asks for a stream: Accept:
// text/event-stream, or an OpenAI-style JSON body whose top-level
// "stream" is true.
func (c *call) streams() bool {
	for _, a := range c.req.Header["Accept"] {
		if strings.Contains(strings.ToLower(a), "text/event-stream") {
			return true
		}
	}
	// The scanner lives in the (recycled) call: handed to WriteTo as an
	// io.Writer, a local one would escape to the heap.
	c.scan = body.StreamScanner{}
	s := &c.scan
	switch c.body.mode {
	case bodyBuffered, bodyOnce:
		c.body.scan(s.Write)
	case bodyGetBody:
		rc, err := c.req.GetBody()
		if err != nil {
			return false // the attempts will report it
		}
		if wt, ok := rc.(io.WriterTo); ok {
			// A body over bytes (http.NewRequest's, openai-go's) writes
			// its bytes as they are: scanned without a copy or a buffer
			// (BenchmarkRoundTripSturdyTimeouts).
			_, _ = wt.WriteTo((*scanWriter)(s))
		} else {
			buf := make([]byte, 4<<10)
			for !s.Done() {
				n, err := rc.Read(buf)
				s.Write(buf[:n])
				if err != nil {
					break
				}
			}
		}
		_ = rc.Close()
	}
	return s.Stream()
}

// scanWriter feeds a StreamScanner as an io.Writer.
type scanWriter body.StreamScanner

func (w *scanWriter) Write(p []byte) (int, error) {
	(*body.StreamScanner)(w).Write(p)
	return len(p), nil
}

// stripTimeoutHeaders removes the per-call timeout headers from an
// attempt's own header map.
func stripTimeoutHeaders(h http.Header) {
	delete(h, HeaderTTFBTimeout)
	delete(h, HeaderResponseTimeout)
}
