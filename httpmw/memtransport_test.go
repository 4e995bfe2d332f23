package httpmw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/sturdytest"
)

// memTransport is an in-memory http.RoundTripper for tests that run in a
// testing/synctest bubble. Real sockets do not work there: a goroutine
// waiting on network I/O is not durably blocked, so the bubble's fake
// clock would not advance past it. Each request goes to the http.Handler
// registered for its URL host, which runs on a goroutine of its own (in
// the caller's bubble) and answers through an io.Pipe:
//
//   - RoundTrip returns the response as soon as the handler sends its
//     header (WriteHeader, its first Write, or Flush) or returns. It
//     returns an error instead if the handler aborts first (panics with
//     http.ErrAbortHandler, as fakellm does to cut a connection it cannot
//     hijack) or if the request's context ends first.
//   - The handler's request context derives from the request's. It ends
//     when the request's context ends, when the response body is closed,
//     and when the handler returns. Soon after it ends (the pipe is cut
//     from a context.AfterFunc), the handler's writes fail
//     (io.ErrClosedPipe); the client then reads the context's cause,
//     io.ErrClosedPipe after its own Close, or io.EOF once the handler
//     has returned.
//   - The body is unbuffered: a Write returns once the client has read
//     it, and a Read gets what the handler wrote as it comes, so a stream
//     is readable chunk by chunk. Flush only sends the header.
//   - A handler that aborts after its header cuts the body: Read gets
//     io.ErrUnexpectedEOF. Any other panic fails the test.
//   - The request body is closed once the handler has returned (at once
//     if the request goes nowhere).
//
// Nothing is dialed: hosts are map keys only. A request to a host with
// no handler gets a connection-refused error.
type memTransport struct {
	t        testing.TB
	mu       sync.Mutex
	handlers map[string]http.Handler // by URL host
	next     int                     // the port add gives out next
}

var (
	errMemBodyClosed = errors.New("memtransport: response body closed")
	errMemDone       = errors.New("memtransport: handler returned")
)

func newMemTransport(t testing.TB) *memTransport {
	return &memTransport{t: t, handlers: map[string]http.Handler{}, next: 10001}
}

// add serves h on the next host 127.0.0.1:N and returns its base URL.
func (m *memTransport) add(h http.Handler) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	host := "127.0.0.1:" + strconv.Itoa(m.next)
	m.next++
	m.handlers[host] = h
	return "http://" + host
}

func (m *memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	m.mu.Lock()
	h := m.handlers[req.URL.Host]
	m.mu.Unlock()
	if h == nil {
		closeReqBody(req)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	if req.Context().Err() != nil {
		closeReqBody(req)
		return nil, context.Cause(req.Context())
	}
	u, err := url.ParseRequestURI(req.URL.RequestURI())
	if err != nil {
		closeReqBody(req)
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	x := &memExchange{client: req, ctx: ctx, cancel: cancel, header: make(http.Header), ready: make(chan struct{})}
	x.pr, x.pw = io.Pipe()
	x.stopCut = context.AfterFunc(ctx, x.cut)

	// The request as a server sees it.
	sreq := req.Clone(ctx)
	sreq.URL, sreq.RequestURI = u, req.URL.RequestURI()
	if sreq.Host == "" {
		sreq.Host = req.URL.Host
	}
	sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/1.1", 1, 1
	sreq.RemoteAddr = "127.0.0.1:40000"
	sreq.GetBody = nil
	sreq.Body = http.NoBody
	if req.Body != nil && req.Body != http.NoBody {
		sreq.Body = io.NopCloser(req.Body) // the client's body is closed once the handler returns
	}
	go x.serve(m.t, h, sreq)

	select {
	case <-x.ready:
	case <-req.Context().Done():
		// x.cut ends the handler.
		return nil, context.Cause(req.Context())
	}
	if x.err != nil {
		return nil, x.err
	}
	return x.resp, nil
}

// memExchange is one request and its answer; it is the handler's
// http.ResponseWriter and http.Flusher.
type memExchange struct {
	client  *http.Request
	ctx     context.Context // the handler's request context
	cancel  context.CancelCauseFunc
	stopCut func() bool
	pr      *io.PipeReader
	pw      *io.PipeWriter
	header  http.Header // the handler's, until sent

	mu       sync.Mutex
	status   int  // once sent
	sent     bool // resp (or err) is set and ready closed
	finished bool // the handler returned and the pipe is closed
	resp     *http.Response
	err      error // the handler aborted before its header
	ready    chan struct{}
}

var _ http.Flusher = (*memExchange)(nil)

func (x *memExchange) serve(t testing.TB, h http.Handler, r *http.Request) {
	aborted := false
	func() {
		defer func() {
			if v := recover(); v != nil {
				aborted = true
				if v != http.ErrAbortHandler {
					t.Errorf("memtransport: the handler of %s panicked: %v\n%s", x.client.URL.Host, v, debug.Stack())
				}
			}
		}()
		h.ServeHTTP(x, r)
	}()

	x.mu.Lock()
	switch {
	case aborted && !x.sent:
		x.err = fmt.Errorf("memtransport: %s closed the connection before the response: %w", x.client.URL.Host, io.EOF)
		x.sent = true
		close(x.ready)
	case !x.sent:
		x.sendLocked(http.StatusOK, true)
	}
	switch {
	case x.ctx.Err() != nil:
		// Ended early (not by errMemDone, below): reads fail with the
		// cause, whether or not cut has run yet.
		x.pw.CloseWithError(context.Cause(x.ctx))
	case aborted:
		x.pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	x.finished = true
	_ = x.pw.Close() // no-op if closed with an error already
	x.mu.Unlock()
	x.stopCut()
	x.cancel(errMemDone) // as net/http does when ServeHTTP returns
	closeReqBody(x.client)
}

// cut ends an exchange whose context ended before the handler returned:
// the client's reads fail with the cause, the handler's writes with
// io.ErrClosedPipe.
func (x *memExchange) cut() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.finished {
		x.pw.CloseWithError(context.Cause(x.ctx))
	}
}

// sendLocked makes the response from a copy of the header; done means
// the handler returned without writing a body. x.mu is held.
func (x *memExchange) sendLocked(code int, done bool) {
	h := x.header.Clone()
	cl := int64(-1)
	if v := h.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			cl = n
		}
	} else if done {
		cl = 0
	}
	x.status = code
	x.resp = &http.Response{
		Status:     strconv.Itoa(code) + " " + http.StatusText(code),
		StatusCode: code,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        h,
		Body:          &memBody{x: x},
		ContentLength: cl,
		Request:       x.client,
	}
	x.sent = true
	close(x.ready)
}

func (x *memExchange) Header() http.Header { return x.header }

func (x *memExchange) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return // informational: not modelled
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.sent {
		x.sendLocked(code, false)
	}
}

func (x *memExchange) Write(p []byte) (int, error) {
	x.mu.Lock()
	if !x.sent {
		if x.header.Get("Content-Type") == "" && len(p) > 0 {
			x.header.Set("Content-Type", http.DetectContentType(p))
		}
		x.sendLocked(http.StatusOK, false)
	}
	status := x.status
	x.mu.Unlock()
	switch {
	case x.client.Method == http.MethodHead:
		return len(p), nil
	case status == http.StatusNoContent || status == http.StatusNotModified:
		return 0, http.ErrBodyNotAllowed
	case len(p) == 0:
		return 0, nil
	}
	return x.pw.Write(p)
}

// FlushError sends the header if it was not; it fails once the
// exchange's context has ended (the client is gone).
func (x *memExchange) FlushError() error {
	x.mu.Lock()
	if !x.sent {
		x.sendLocked(http.StatusOK, false)
	}
	x.mu.Unlock()
	if x.ctx.Err() != nil {
		return context.Cause(x.ctx)
	}
	return nil
}

func (x *memExchange) Flush() { _ = x.FlushError() }

// memBody is the client's response body.
type memBody struct{ x *memExchange }

func (b *memBody) Read(p []byte) (int, error) { return b.x.pr.Read(p) }

// Close ends the exchange: the handler's context ends and its writes fail.
func (b *memBody) Close() error {
	b.x.cancel(errMemBodyClosed) // first: a write it unblocks sees the context ended
	_ = b.x.pr.Close()           // the handler's writes get io.ErrClosedPipe
	return nil
}

// memLLM makes a fake LLM server and serves it on m; make it inside the
// bubble, so that its latencies run on the fake clock. It is closed when
// the test ends.
func memLLM(t *testing.T, m *memTransport, cfg sturdytest.Config) (*sturdytest.Server, string) {
	t.Helper()
	s := sturdytest.NewLLM(cfg)
	t.Cleanup(s.Close)
	return s, m.add(s)
}

// newMemTr is newTr over a memTransport, or over a base that passes
// requests on to one.
func newMemTr(t *testing.T, base http.RoundTripper, opts ...Option) *Transport {
	t.Helper()
	tr, err := NewTransport(base, append(testOpts(), opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// memRec is recorder for a memTransport: a handler that records what it
// received and answers with h's choice.
type memRec struct {
	h       func(w http.ResponseWriter, r *http.Request, n int)
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	paths   []string
}

func (rec *memRec) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.bodies = append(rec.bodies, b)
	rec.headers = append(rec.headers, r.Header.Clone())
	rec.paths = append(rec.paths, r.URL.RequestURI())
	n := len(rec.bodies)
	rec.mu.Unlock()
	rec.h(w, r, n)
}

func (rec *memRec) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.bodies)
}

func (rec *memRec) body(i int) []byte {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.bodies[i]
}

func (rec *memRec) header(i int) http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.headers[i]
}

func (rec *memRec) path(i int) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.paths[i]
}

// slowThenHedge serves a tier of two fake servers over a memTransport:
// "slow", which round-robin tries first and which answers after latency,
// and "fast", which answers at once, with a hedge after 20ms. Call it in
// a bubble.
func slowThenHedge(t *testing.T, latency time.Duration) (slow, fast *sturdytest.Server, tr *Transport) {
	t.Helper()
	mt := newMemTransport(t)
	slow, slowURL := memLLM(t, mt, sturdytest.Config{Name: "slow", Latency: sturdytest.Latency{Fixed: latency}})
	fast, fastURL := memLLM(t, mt, sturdytest.Config{Name: "fast"})
	tr = newMemTr(t, mt, WithTier(degrade.Tier{}, ep("slow", slowURL, ""), ep("fast", fastURL, "")),
		WithHedge(hedge.Config{Delay: 20 * time.Millisecond, BudgetRatio: -1}))
	return slow, fast, tr
}

// The memTransport's own tests.

func TestMemTransportStreamsChunkByChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		step := make(chan struct{})
		var done atomic.Bool
		var got *http.Request
		u := mt.add(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer done.Store(true)
			got = r
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-Late", "1") // after the header: not sent
			_, _ = io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			<-step
			time.Sleep(time.Second)
			_, _ = io.WriteString(w, "data: 2\n\n")
		}))
		req, err := http.NewRequest(http.MethodPost, u+"/v1/x?a=b", strings.NewReader("ping"))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer k")
		start := time.Now()
		resp, err := mt.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, http.StatusAccepted, resp.StatusCode)
		assert.Equal(t, "202 Accepted", resp.Status)
		assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		assert.Empty(t, resp.Header.Get("X-Late"), "the header is copied when sent")
		assert.EqualValues(t, -1, resp.ContentLength)
		assert.Same(t, req, resp.Request)

		// The server-side request.
		assert.Equal(t, "/v1/x", got.URL.Path)
		assert.Equal(t, "/v1/x?a=b", got.RequestURI)
		assert.Equal(t, "127.0.0.1:10001", got.Host)
		assert.Equal(t, "Bearer k", got.Header.Get("Authorization"))
		assert.Nil(t, got.GetBody)

		first := make([]byte, len("data: 1\n\n"))
		_, err = io.ReadFull(resp.Body, first)
		require.NoError(t, err)
		assert.Equal(t, "data: 1\n\n", string(first))
		synctest.Wait()
		assert.False(t, done.Load(), "the first chunk arrived while the handler runs")
		close(step)
		rest, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "data: 2\n\n", string(rest))
		assert.Equal(t, time.Second, time.Since(start), "the second chunk came when the handler wrote it")
		require.NoError(t, resp.Body.Close())
		synctest.Wait()
		assert.True(t, done.Load())
	})
}

func TestMemTransportBodyCloseCancelsHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		causes := make(chan error, 2)
		writeErrs := make(chan error, 1)
		waiting := mt.add(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			causes <- context.Cause(r.Context())
		}))
		writing := mt.add(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, err := w.Write([]byte("nobody reads this")) // blocks until the body is closed
			writeErrs <- err
			causes <- context.Cause(r.Context())
		}))

		resp, err := mt.RoundTrip(httptestGet(t, waiting))
		require.NoError(t, err)
		synctest.Wait()
		assert.Empty(t, causes, "the handler still runs")
		require.NoError(t, resp.Body.Close())
		synctest.Wait()
		require.Len(t, causes, 1, "the handler ended")
		assert.ErrorIs(t, <-causes, errMemBodyClosed)
		_, err = resp.Body.Read(make([]byte, 1))
		assert.Error(t, err, "read after Close")

		resp, err = mt.RoundTrip(httptestGet(t, writing))
		require.NoError(t, err)
		synctest.Wait()
		assert.Empty(t, writeErrs, "the write is blocked")
		require.NoError(t, resp.Body.Close())
		synctest.Wait()
		require.Len(t, writeErrs, 1, "the blocked write is released")
		assert.ErrorIs(t, <-writeErrs, io.ErrClosedPipe)
		assert.ErrorIs(t, <-causes, errMemBodyClosed)
	})
}

func TestMemTransportRequestContextEndsHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		causes := make(chan error, 3)
		u := mt.add(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/after-header" {
				w.(http.Flusher).Flush()
			}
			<-r.Context().Done()
			causes <- context.Cause(r.Context())
		}))

		// Before the header: RoundTrip returns the context's error.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		resp, err := mt.RoundTrip(httptestGet(t, u+"/before-header").WithContext(ctx))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
		synctest.Wait()
		require.Len(t, causes, 1, "the handler ended")
		assert.ErrorIs(t, <-causes, context.DeadlineExceeded)

		// After the header: the body's Read fails with the cause.
		stop := errors.New("stop")
		ctx2, cancel2 := context.WithCancelCause(t.Context())
		resp, err = mt.RoundTrip(httptestGet(t, u+"/after-header").WithContext(ctx2))
		require.NoError(t, err)
		cancel2(stop)
		_, err = io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, stop)
		synctest.Wait()
		require.Len(t, causes, 1, "the handler ended")
		assert.ErrorIs(t, <-causes, stop)
		require.NoError(t, resp.Body.Close())

		// Already ended: the handler does not run.
		resp, err = mt.RoundTrip(httptestGet(t, u+"/never").WithContext(ctx2))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, stop)
		synctest.Wait()
		assert.Empty(t, causes)
	})
}

func TestMemTransportClosesRequestBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		release := make(chan struct{})
		var read string
		u := mt.add(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			read = string(b)
			_ = r.Body.Close() // the handler's Close is not the client's
			w.WriteHeader(http.StatusOK)
			<-release
		}))
		b := &trackBody{Reader: strings.NewReader("payload")}
		req, err := http.NewRequest(http.MethodPost, u, b)
		require.NoError(t, err)
		resp, err := mt.RoundTrip(req)
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, "payload", read)
		assert.Zero(t, b.closed.Load(), "not before the handler returns")
		close(release)
		assert.Empty(t, readAll(t, resp))
		synctest.Wait()
		assert.EqualValues(t, 1, b.closed.Load())

		// A host without a handler refuses, and closes the body too.
		b = &trackBody{Reader: strings.NewReader("payload")}
		req, err = http.NewRequest(http.MethodPost, "http://127.0.0.1:1", b)
		require.NoError(t, err)
		resp, err = mt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
		assert.EqualValues(t, 1, b.closed.Load())
	})
}

func TestMemTransportAbortsAndEmptyAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport(t)
		u := mt.add(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/abort-before":
				panic(http.ErrAbortHandler)
			case "/abort-after":
				_, _ = io.WriteString(w, "partial")
				panic(http.ErrAbortHandler)
			case "/empty":
				w.Header().Set("X-Empty", "1")
			case "/sized":
				w.Header().Set("Content-Length", "2")
				_, _ = io.WriteString(w, "ok")
			}
		}))
		resp, err := mt.RoundTrip(httptestGet(t, u+"/abort-before"))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, io.EOF)

		resp, err = mt.RoundTrip(httptestGet(t, u+"/abort-after"))
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, "partial", string(b))
		assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"), "sniffed, as net/http does")
		require.NoError(t, resp.Body.Close())

		resp, err = mt.RoundTrip(httptestGet(t, u+"/empty"))
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("X-Empty"))
		assert.EqualValues(t, 0, resp.ContentLength)
		assert.Empty(t, readAll(t, resp))

		resp, err = mt.RoundTrip(httptestGet(t, u+"/sized"))
		require.NoError(t, err)
		assert.EqualValues(t, 2, resp.ContentLength)
		assert.Equal(t, "ok", readAll(t, resp))
	})
}

func httptestGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	return req
}
