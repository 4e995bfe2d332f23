package httpmw

import (
	"net/http"
	"net/url"
	"sync"

	"github.com/sturdyai/sturdy/internal/attempt"
)

// attemptState is what an attempt allocates, in one allocation: the
// request it sends (a copy of the caller's), for a success the response
// body wrapper, and the attempt's own context when it has one (with an
// attempt timeout: call.store). TestAttemptStateSizeClass keeps its size
// class.
type attemptState struct {
	req  http.Request
	body respBody
	ctx  attempt.ContextStore
}

// sentParts are the parts of an attempt's request that it recycles: the
// request's URL (a copy of the endpoint's routed URL: endpoint.routed)
// and its header map, when it has one of its own (outHeader).
//
// net/http's RoundTripper contract lets a caller reuse a request once the
// response's body has been closed, and sturdy is its base's caller. So a
// served attempt's sentParts are recycled (sentRequestParts) when the
// caller first closes the response body. A failed attempt, a hedge that
// lost and a body read to its end but never closed leave theirs to the
// garbage collector. Recycling saves what each call would otherwise
// allocate and collect: the URL (144 bytes) and, when the attempt's
// header differs from the caller's (the endpoint's credentials), a header
// map (400 bytes for a few keys; BenchmarkRoundTripOverhead).
//
// The request itself is not recycled: net/http's Transport may still be
// writing its body, and then closes it through the request, after it
// returned the response (a server that answered early). It is done with
// the URL and the header once the request line and headers are written,
// which comes before any answer.
//
// A base that keeps reading a request after its response body was closed
// breaks the contract; WithoutRequestReuse is for one that does.
type sentParts struct {
	url url.URL
	hdr http.Header // nil: none yet
}

var sentRequestParts = sync.Pool{New: func() any { return new(sentParts) }}

// getSentParts returns sentParts to fill: recycled ones when reuse is on.
func getSentParts(reuse bool) *sentParts {
	if !reuse {
		return new(sentParts)
	}
	return sentRequestParts.Get().(*sentParts)
}

// recycle gives s back for another attempt: call it once the response
// body is closed. The URL is overwritten whole by the next attempt; the
// header's values are the caller's, so the map is emptied.
func (s *sentParts) recycle() {
	clear(s.hdr)
	sentRequestParts.Put(s)
}
