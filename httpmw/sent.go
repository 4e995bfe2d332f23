package httpmw

import (
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// sentRequest is what an attempt sends its endpoint: the request (a copy
// of the caller's), its URL, its header map and a watch on its body.
//
// net/http's RoundTripper contract lets a caller reuse a request once the
// response's body has been closed, and sturdy is its base's caller. So a
// served attempt's sentRequest is recycled (sentRequests) when the caller
// closes the response body, if the base has closed the request body by
// then too: net/http's Transport closes it once it has written it, and
// may still be writing it after it returned the response (a server that
// answered early), which recycling must not overlap. A request without
// a body, an attempt that
// failed, a hedge that lost and a body read to its end but never closed
// leave theirs to the garbage collector. Recycling saves what each call
// would otherwise allocate and collect: the request and its URL (448
// bytes) and, when the attempt's header differs from the caller's (the
// endpoint's credentials), the header map (BenchmarkRoundTripOverhead).
//
// A base that keeps using a request after its response body was closed
// breaks the contract; WithoutRequestReuse is for one that does.
type sentRequest struct {
	req  http.Request
	url  url.URL
	hdr  http.Header // the attempt's own header map, kept for reuse; nil: none yet
	body sentBody
}

// sentBody is an attempt's request body as its base sees it: the body
// plain or rewritten, with a note of the base's Close.
type sentBody struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

func (b *sentBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *sentBody) Close() error {
	err := b.rc.Close()
	b.closed.Store(true)
	return err
}

var sentRequests = sync.Pool{New: func() any { return new(sentRequest) }}

// getSent returns a sentRequest to fill: a recycled one when reuse is on.
func getSent(reuse bool) *sentRequest {
	if !reuse {
		return new(sentRequest)
	}
	return sentRequests.Get().(*sentRequest)
}

// setBody makes rc the request's body, watched. A request without a body
// is never recycled: nothing tells when its base is done with it (the
// base may still close or read it after the response: a Body of nil or
// http.NoBody is not wrapped, which would turn it into a body of unknown
// length). Inference calls have bodies.
func (s *sentRequest) setBody(rc io.ReadCloser) {
	if rc == nil || rc == http.NoBody {
		s.req.Body = rc
		return
	}
	s.body.rc = rc
	s.req.Body = &s.body
}

// recycle gives s back for another attempt, if its base is done with it:
// call it once the response body is closed.
func (s *sentRequest) recycle() {
	if !s.body.closed.Load() {
		return // the base may still be writing the body: leave it be
	}
	// The URL is overwritten whole by the next attempt; the request's
	// fields are not all, and hold the caller's memory (its context, its
	// body): cleared.
	s.req = http.Request{}
	clear(s.hdr)
	s.body.rc = nil
	s.body.closed.Store(false)
	sentRequests.Put(s)
}
