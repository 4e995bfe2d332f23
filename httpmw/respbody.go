package httpmw

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/body"
)

// ErrStreamTruncated is the outcome error of a stream that ended without
// its `data: [DONE]` terminator; the caller's Read gets io.ErrUnexpectedEOF.
var ErrStreamTruncated = errors.New("httpmw: event stream ended without data: [DONE]")

// respBody wraps a winning (or candidate) response body. The attempt reads
// the first chunk (the head) before it reports success, so that failover
// and hedging decide before any byte reaches the caller; Read hands it out
// first, then passes the rest through unbuffered. It watches the bytes for
// the stream terminator and the token usage, and releases the call (the
// winner's context, balancer, health and token reports, the spans) once,
// at EOF, at a read error or at Close.
//
// It is kept to 80 bytes, so that an attempt's state (the request it
// sent, this and its context) fits the 512-byte size class
// (TestAttemptStateSizeClass):
// every byte allocated per call costs CPU in the allocator and the
// collector. A plain answer (JSON, no token pacing, no GenAI metrics, no
// first-byte timeout: the common case) needs nothing more, and its head is
// its first byte; anything else lives in x.
type respBody struct {
	rc    io.ReadCloser
	stuck error // sticky error once the body ended
	// c is the served call, which the body owns from then until release
	// gives it back to the pool: only release (and end, once it claimed
	// the release) may touch it.
	c *call
	x *bodyScan // nil: nothing to scan and no context of its own
	// parts are the attempt's request's, recycled at the first Close
	// (sentParts); nil when reuse is off. Set before the caller sees the
	// body, never written after.
	parts *sentParts

	released atomic.Bool
	closed   atomic.Bool // Close was called
	// head()[headOff:headEnd] is what the attempt read ahead that Read
	// has not handed out yet; headEOF says io.EOF came with it, to be
	// delivered after it.
	headOff, headEnd uint8
	headEOF          bool
	wide             bool    // the head is x.headBuf, else one
	sized            bool    // a plain answer with a known length: the rest is on its way
	one              [1]byte // the head of a plain answer: its first byte
}

// bodyScan is what a response body needs beyond a plain answer's: the
// scanners of an event stream or of a body whose usage counts, the GenAI
// state, the attempt's own context, and a longer head, in which an event
// stream's error event is recognised.
type bodyScan struct {
	cancel context.CancelCauseFunc // the attempt's own context, if any
	// usage is written by Read and read by release, which a Close on
	// another goroutine may run during a Read (net/http lets Close abort
	// a Read); usageMu orders the two. gen is set once the call is
	// served, before the caller sees the body, and guarded by usageMu.
	usageMu sync.Mutex
	gen     *genState
	usage   usageScanner
	done    doneScanner
	sse     bool // text/event-stream with terminator checking
	scanUse bool // JSON or SSE: scan for usage
	headBuf [headLen]byte
}

// headLen is the size of a wide head; headOff and headEnd index it.
const headLen = 64

const _ uint8 = headLen // a compile-time check that the offsets can hold it

// head is the buffer the attempt read the head into.
func (b *respBody) head() []byte {
	if b.wide {
		return b.x.headBuf[:]
	}
	return b.one[:]
}

// scans returns b's bodyScan, which it makes if b has none: in the GenAI
// state gen when there is one (its allocation), else on its own.
func (b *respBody) scans(gen *genState) *bodyScan {
	if b.x == nil {
		if gen != nil {
			b.x = &gen.scan
		} else {
			b.x = new(bodyScan)
		}
	}
	return b.x
}

func (b *respBody) Read(p []byte) (int, error) {
	if b.stuck != nil {
		return 0, b.stuck
	}
	if b.headOff < b.headEnd {
		n := copy(p, b.head()[b.headOff:b.headEnd])
		b.headOff += uint8(n)
		b.scan(p[:n])
		if b.sized && b.headOff == b.headEnd && !b.headEOF && n < len(p) {
			// A plain answer's head is one byte; when its length is known
			// it is no stream, and the rest comes with it rather than in
			// a Read of its own.
			m, err := b.rc.Read(p[n:])
			b.scan(p[n : n+m])
			if err != nil {
				return b.end(n+m, err)
			}
			return n + m, nil
		}
		return n, nil
	}
	if b.headEOF {
		b.headEOF = false
		return b.end(0, io.EOF)
	}
	n, err := b.rc.Read(p)
	b.scan(p[:n])
	if err != nil {
		return b.end(n, err)
	}
	return n, nil
}

func (b *respBody) scan(p []byte) {
	x := b.x
	if x == nil || len(p) == 0 {
		return
	}
	if x.sse {
		x.done.write(p)
	}
	if x.scanUse || x.gen != nil {
		x.usageMu.Lock()
		if x.scanUse {
			x.usage.write(p)
		}
		if x.gen != nil {
			x.gen.write(p)
		}
		x.usageMu.Unlock()
	}
}

// end settles the body at its first error or EOF.
func (b *respBody) end(n int, err error) (int, error) {
	truncated := err == io.EOF && b.x != nil && b.x.sse && !b.x.done.sawDone()
	if truncated {
		err = io.ErrUnexpectedEOF
	}
	b.stuck = err
	if !b.released.CompareAndSwap(false, true) {
		return n, err // Close released the call: b.c is not ours to read
	}
	var o sturdy.Outcome
	amend := true
	switch {
	case truncated:
		o = sturdy.Outcome{Class: sturdy.Unavailable, Err: ErrStreamTruncated}
	case err == io.EOF:
		amend = false
	case b.c != nil && b.c.req.Context().Err() != nil:
		o = sturdy.Outcome{Class: sturdy.Canceled, Err: b.c.req.Context().Err()}
	default:
		// A cut after the first byte: too late to fail over, so the caller
		// gets the error, and health learns of it (unless Close released
		// the call first).
		o = sturdy.Outcome{Class: sturdy.Unavailable, Err: err}
	}
	b.release(o, amend)
	return n, err
}

// Close claims the release before it closes the body: closing aborts a
// Read in progress on another goroutine, whose error must not count as
// the endpoint's failure when it was the caller who stopped reading.
func (b *respBody) Close() error {
	// A body read to its end was released then: a load, cheaper than a
	// failing CAS, says so.
	first := !b.released.Load() && b.released.CompareAndSwap(false, true)
	err := b.rc.Close()
	if first {
		b.release(sturdy.Outcome{}, false)
	}
	// The base is done with the request once its response body is
	// closed (net/http.RoundTripper's contract).
	if b.parts != nil && b.closed.CompareAndSwap(false, true) {
		b.parts.recycle()
	}
	return err
}

// release runs once, for whichever of end and Close claimed b.released
// first: it reports the outcome (o, if amend, replaces the winner's) and
// the token usage, ends the spans, releases the winner's context and
// gives the call back to the pool.
func (b *respBody) release(o sturdy.Outcome, amend bool) {
	c, x := b.c, b.x
	if c == nil {
		// Not served (cannot happen: RoundTrip sets c before the caller
		// sees the body); there is no call to report.
		b.cancelOwn()
		return
	}
	served, tel := &c.served, c.t.tel
	class := sturdy.Success // read to its end, or closed by the caller
	if amend {
		o.Latency = served.Outcome().Latency
		served.SetOutcome(o)
		class = o.Class
	}
	tokens := int64(-1)
	if x != nil && x.scanUse {
		x.usageMu.Lock()
		tokens = x.usage.tokens()
		x.usageMu.Unlock()
	}
	served.Release(tokens)
	a := served.Attempt()
	tel.RecordCall(c.tc, served.Tier, a.Endpoint.Name, class, a.N)
	if x != nil && x.gen != nil {
		g := x.gen
		x.usageMu.Lock()
		in, out := g.tokens()
		g.g.ResponseModel = g.responseModel()
		x.usageMu.Unlock()
		if class != sturdy.Success {
			g.g.ErrorType = class.String()
		}
		var first time.Time
		if g.sse {
			first = g.firstByte
		}
		tel.RecordGenAI(c.tc, g.ep.genAISets(tel, &g.g), first, in, out)
	}
	c.tc.End()
	b.cancelOwn()
	putCall(c)
}

// cancelOwn ends the attempt's own context, if it has one.
func (b *respBody) cancelOwn() {
	if b.x != nil && b.x.cancel != nil {
		b.x.cancel(errBodyClosed)
	}
}

// discard releases a response the call does not keep (a losing hedge).
func (b *respBody) discard() {
	body.Drain(b.rc, body.DrainLimit)
	b.cancelOwn()
}

var errBodyClosed = errors.New("httpmw: response body closed")

func isEventStream(ct string) bool {
	return len(ct) >= 17 && strings.EqualFold(ct[:17], "text/event-stream")
}

func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	return strings.EqualFold(ct, "application/json") || strings.HasSuffix(strings.ToLower(ct), "+json")
}
