package httpmw

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/internal/attempt"
)

// stubTransport answers every request with a canned 200 JSON response,
// without a network, reading and closing the request body as a real
// transport does.
type stubTransport struct{}

const stubAnswer = `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

func (stubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(stubAnswer)),
		ContentLength: int64(len(stubAnswer)),
		Request:       req,
	}, nil
}

func benchRequest(b testing.TB) *http.Request {
	payload := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 1024-55) + `"}]}`)
	req, err := http.NewRequest(http.MethodPost, "http://llm.local/v1/chat/completions", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer caller-key")
	return req
}

func runBench(b *testing.B, rt http.RoundTripper) { runBenchReq(b, rt, benchRequest(b)) }

// runBenchReq sends a copy of req through rt b.N times, reading each
// response to its end.
func runBenchReq(b *testing.B, rt http.RoundTripper, req *http.Request) {
	buf := make([]byte, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTripOnce(b, rt, req, buf)
	}
}

// roundTripOnce sends a copy of req through rt and reads the response to
// its end.
func roundTripOnce(b *testing.B, rt http.RoundTripper, req *http.Request, buf []byte) {
	r := req.Clone(req.Context())
	r.Body, _ = req.GetBody()
	resp, err := rt.RoundTrip(r)
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	_ = resp.Body.Close()
}

func BenchmarkRoundTripStub(b *testing.B) { runBench(b, stubTransport{}) }

func BenchmarkRoundTripSturdy(b *testing.B) {
	tr, err := NewTransport(stubTransport{}, WithTier(degrade.Tier{Name: "primary", Model: "m"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
		URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
	), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	runBench(b, tr)
}

// floorTransport does the least a transport that keeps the RoundTripper
// contract and replaces the caller's credential must do per request,
// before any policy: a request of its own with its own URL (never the
// caller's), and a header map of its own without the caller's credential
// and with the endpoint's. It then calls the stub. BenchmarkRoundTripFloor
// minus BenchmarkRoundTripStub is that floor, for comparison with
// BenchmarkRoundTripSturdy in the same run.
type floorTransport struct{ stubTransport }

// outRequest is the floor's request, its own URL, and room for the URL's
// path, allocated together.
type outRequest struct {
	r       http.Request
	u       url.URL
	pathBuf [32]byte // room for the joined path; written once
}

var floorKey = []string{"Bearer a-key"} // shared, as an endpoint's header values are

func (f floorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := new(outRequest)
	floorRequest(o, req)
	return f.stubTransport.RoundTrip(&o.r)
}

// floorRequest fills o with the least copy of req an attempt can send: a
// request and URL of its own, and a header map of its own with the
// endpoint's credential instead of the caller's.
func floorRequest(o *outRequest, req *http.Request) {
	o.r = *req
	o.u = *req.URL
	o.r.URL = &o.u
	o.u.Host = "127.0.0.1:1"
	h := maps.Clone(req.Header)
	delete(h, "Authorization")
	h["Authorization"] = floorKey
	o.r.Header = h
}

func BenchmarkRoundTripFloor(b *testing.B) { runBench(b, floorTransport{}) }

// floorTimeoutTransport is floorTransport plus the least a transport must
// do to bound each attempt with a timeout, as sturdy does by default (the
// adaptive attempt timeout): a context of the attempt's own that a timer
// can cancel, a recycled timer, and a body that releases the context when
// it is closed (in the request's allocation, as sturdy does). The time
// never runs out here; the work of arming and stopping it is the cost.
type floorTimeoutTransport struct{ stubTransport }

type floorTimeoutState struct {
	outRequest
	body   floorBody
	cancel context.CancelCauseFunc
}

type floorBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *floorBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(context.Canceled)
	return err
}

func (f floorTimeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := new(floorTimeoutState)
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := attempt.StartTimer(time.Time{}, time.Minute, cancel, attempt.ErrAttemptTimeout)
	floorRequest(&o.outRequest, req)
	o.r = *o.r.WithContext(ctx)
	resp, err := f.stubTransport.RoundTrip(&o.r)
	timer.Stop()
	if err != nil {
		cancel(err)
		return nil, err
	}
	o.body = floorBody{resp.Body, cancel}
	resp.Body = &o.body
	return resp, nil
}

// BenchmarkRoundTripFloorTimeout minus BenchmarkRoundTripStub is the floor
// of a transport that bounds each attempt with a timeout.
func BenchmarkRoundTripFloorTimeout(b *testing.B) { runBench(b, floorTimeoutTransport{}) }

// floorReuseTransport is floorTransport recycling its request, URL and
// header map once the response body is closed: the least a transport that
// recycles them does per request, for comparison. (sturdy recycles the URL
// and the header map, not the request, which net/http's Transport may
// still use after the response: sentParts.)
type floorReuseTransport struct{ stubTransport }

type reusedRequest struct {
	outRequest
	hdr http.Header
}

var reusedRequests = sync.Pool{New: func() any { return new(reusedRequest) }}

type reuseBody struct {
	io.ReadCloser
	o *reusedRequest
}

func (b *reuseBody) Close() error {
	err := b.ReadCloser.Close()
	if o := b.o; o != nil {
		b.o = nil
		o.r = http.Request{}
		clear(o.hdr)
		reusedRequests.Put(o)
	}
	return err
}

func (f floorReuseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := reusedRequests.Get().(*reusedRequest)
	o.r = *req
	o.u = *req.URL
	o.r.URL = &o.u
	o.u.Host = "127.0.0.1:1"
	if o.hdr == nil {
		o.hdr = make(http.Header, len(req.Header))
	}
	for k, vs := range req.Header {
		if k != "Authorization" {
			o.hdr[k] = vs
		}
	}
	o.hdr["Authorization"] = floorKey
	o.r.Header = o.hdr
	resp, err := f.stubTransport.RoundTrip(&o.r)
	if err != nil {
		return nil, err
	}
	resp.Body = &reuseBody{resp.Body, o}
	return resp, nil
}

// BenchmarkRoundTripFloorReuse minus BenchmarkRoundTripStub is the floor
// of a transport that recycles its requests.
func BenchmarkRoundTripFloorReuse(b *testing.B) { runBench(b, floorReuseTransport{}) }
