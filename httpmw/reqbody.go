package httpmw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/internal/body"
)

type bodyMode uint8

const (
	bodyNone     bodyMode = iota // no body
	bodyGetBody                  // replayed through Request.GetBody
	bodyBuffered                 // read whole into buf
	bodyOnce                     // too long to buffer: buf is a prefix, rest follows; one attempt
)

// reqBody gives each attempt its own body. Attempts may run concurrently
// (hedges); everything here is safe for that.
//
// A body without GetBody is read once and kept in memory of its exact
// size, never copied again: in one piece (buf) when its length is known
// (Content-Length) or it is short, else in pieces of at most chunkMax
// bytes (chunks), so that reading a body of unknown length never grows
// and copies a buffer. Every attempt reads it through a reader of its own.
// Memory per call is then the body's size plus at most chunkMax.
type reqBody struct {
	mode    bodyMode
	req     *http.Request
	claimed atomic.Bool // req.Body (GetBody mode) or rest (Once mode) went to an attempt
	buf     []byte      // the body (Buffered) or its start (Once), in one piece; nil when in chunks
	chunks  [][]byte    // the body (Buffered) or its start (Once), in pieces
	size    int64       // len(buf) or the chunks' total
	rest    io.ReadCloser
	getBuf  func() (io.ReadCloser, error)

	mu        sync.Mutex
	raw       []byte   // GetBody mode: the body, read for a rewrite; Buffered in chunks: flattened
	rewritten [][]byte // by tier index
	rwErr     []error
}

// Chunk sizes for a body of unknown length: the first piece is chunkMin
// bytes, each next one twice the last, up to chunkMax.
const (
	chunkMin = 512
	chunkMax = 64 << 10
)

var (
	errBodyLonger  = errors.New("httpmw: the request body is longer than Request.ContentLength")
	errBodyShorter = errors.New("httpmw: the request body is shorter than Request.ContentLength")
)

// init decides how the request body is replayed. A body without GetBody
// is read (and closed) whole when it fits in maxBuf bytes; a longer one
// is sent once, as it comes.
func (b *reqBody) init(req *http.Request, maxBuf int64) error {
	b.req = req
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		b.mode = bodyNone
		return nil
	case req.GetBody != nil:
		b.mode = bodyGetBody
		return nil
	case req.ContentLength > maxBuf:
		// Too long to buffer, and known to be: not a byte is read ahead.
		b.mode, b.rest = bodyOnce, req.Body
		return nil
	case req.ContentLength > 0:
		err := b.readKnown(req.Body, req.ContentLength)
		_ = req.Body.Close()
		if err != nil {
			return err
		}
	default:
		more, err := b.readChunks(req.Body, maxBuf)
		if err != nil {
			_ = req.Body.Close()
			return fmt.Errorf("httpmw: reading the request body: %w", err)
		}
		if more {
			b.mode, b.rest = bodyOnce, req.Body
			return nil
		}
		_ = req.Body.Close()
	}
	b.mode = bodyBuffered
	b.getBuf = b.reader
	return nil
}

// readKnown reads a body of n bytes into one buffer of exactly that size,
// and checks that the body ends there.
func (b *reqBody) readKnown(r io.Reader, n int64) error {
	buf := make([]byte, n)
	var probe [1]byte
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return errBodyShorter
		}
		return fmt.Errorf("httpmw: reading the request body: %w", err)
	}
	for {
		m, err := r.Read(probe[:])
		if m > 0 {
			return errBodyLonger
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("httpmw: reading the request body: %w", err)
		}
	}
	b.buf, b.size = buf[:n], n
	return nil
}

// readChunks reads a body of unknown length in pieces until its end or
// until more than limit bytes are read; more reports the latter (the rest
// is still in r). Each piece is filled before the next is made, so only
// the last is not full. A body that fits in its first piece is kept as
// buf.
func (b *reqBody) readChunks(r io.Reader, limit int64) (more bool, err error) {
	size := chunkMin
	for {
		c := make([]byte, 0, size)
		for len(c) < cap(c) {
			n, err := r.Read(c[len(c):cap(c)])
			c = c[:len(c)+n]
			b.size += int64(n)
			if err == io.EOF {
				b.addChunk(c)
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if b.size > limit {
				b.addChunk(c)
				return true, nil
			}
		}
		b.addChunk(c)
		size = min(2*size, chunkMax)
	}
}

func (b *reqBody) addChunk(c []byte) {
	if len(c) == 0 {
		return
	}
	if b.chunks == nil && b.buf == nil {
		b.buf = c
		return
	}
	if b.buf != nil {
		b.chunks = append(b.chunks, b.buf)
		b.buf = nil
	}
	b.chunks = append(b.chunks, c)
}

// reader returns a reader of its own over the buffered body (or start).
func (b *reqBody) reader() (io.ReadCloser, error) {
	if b.chunks != nil {
		return &chunksBody{chunks: b.chunks}, nil
	}
	return newBytesBody(b.buf), nil
}

// flat returns the buffered body in one piece: buf, or the chunks copied
// once into one buffer.
func (b *reqBody) flat() []byte {
	if b.chunks == nil {
		return b.buf
	}
	if b.raw == nil {
		raw := make([]byte, 0, b.size)
		for _, c := range b.chunks {
			raw = append(raw, c...)
		}
		b.raw = raw
	}
	return b.raw
}

// scan passes the buffered body (or start), piece by piece, to w.
func (b *reqBody) scan(w func([]byte)) {
	if b.chunks == nil {
		w(b.buf)
		return
	}
	for _, c := range b.chunks {
		w(c)
	}
}

// once reports whether the body cannot be replayed.
func (b *reqBody) once() bool { return b.mode == bodyOnce }

// finish closes what no attempt took.
func (b *reqBody) finish() {
	// Mostly an attempt took it: a load, cheaper than a failing CAS,
	// says so.
	if !b.claimed.Load() && b.claimed.CompareAndSwap(false, true) {
		switch b.mode {
		case bodyGetBody:
			_ = b.req.Body.Close()
		case bodyOnce:
			_ = b.rest.Close()
		}
	}
}

// plain returns the caller's body as is, for an attempt.
func (b *reqBody) plain() (rc io.ReadCloser, getBody func() (io.ReadCloser, error), n int64, err error) {
	switch b.mode {
	case bodyNone:
		return b.req.Body, nil, 0, nil
	case bodyGetBody:
		if b.claimed.CompareAndSwap(false, true) {
			return b.req.Body, b.req.GetBody, b.req.ContentLength, nil
		}
		rc, err := b.req.GetBody()
		if err != nil {
			return nil, nil, 0, fmt.Errorf("httpmw: Request.GetBody: %w", err)
		}
		return rc, b.req.GetBody, b.req.ContentLength, nil
	case bodyBuffered:
		rc, _ := b.reader()
		return rc, b.getBuf, b.size, nil
	default: // bodyOnce
		if !b.claimed.CompareAndSwap(false, true) {
			return nil, nil, 0, errUnreplayable
		}
		if b.size == 0 {
			return b.rest, nil, b.req.ContentLength, nil
		}
		start, _ := b.reader()
		return &onceBody{Reader: io.MultiReader(start, b.rest), rc: b.rest}, nil, b.req.ContentLength, nil
	}
}

var (
	errUnreplayable     = errors.New("httpmw: the request body was already sent and cannot be replayed; define Request.GetBody or raise WithMaxBodyBuffer")
	errTooLongToRewrite = errors.New("httpmw: the request body is longer than WithMaxBodyBuffer, so its model cannot be rewritten for a fallback tier; define Request.GetBody or raise WithMaxBodyBuffer")
)

// rewrittenFor returns the body rewritten for tier ti's model, computing
// it once per call and tier.
func (b *reqBody) rewrittenFor(t *Transport, ti *tierState) (io.ReadCloser, func() (io.ReadCloser, error), int64, error) {
	if b.mode == bodyNone {
		return b.plain()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rewritten == nil {
		n := len(t.tiers) + len(t.targets)
		b.rewritten = make([][]byte, n)
		b.rwErr = make([]error, n)
	}
	out, err := b.rewritten[ti.slot], b.rwErr[ti.slot]
	if out == nil && err == nil {
		out, err = b.rewrite(t, ti)
		b.rewritten[ti.slot], b.rwErr[ti.slot] = out, err
	}
	if err != nil {
		return nil, nil, 0, err
	}
	return newBytesBody(out), func() (io.ReadCloser, error) { return newBytesBody(out), nil }, int64(len(out)), nil
}

func (b *reqBody) rewrite(t *Transport, ti *tierState) ([]byte, error) {
	var raw []byte
	switch b.mode {
	case bodyBuffered:
		raw = b.flat() // under b.mu
	case bodyOnce:
		return nil, errTooLongToRewrite
	case bodyGetBody:
		var err error
		if raw, err = b.getBodyRaw(t); err != nil {
			return nil, err
		}
	}
	if t.rewrite != nil {
		tier := degrade.Tier(t.chain.Tier(ti.index))
		tier.Model = ti.model // an endpoint's deployment name, if it has one
		out, err := t.rewrite(tier, b.req, raw)
		if err != nil {
			return nil, fmt.Errorf("httpmw: rewriting the model for tier %s: %w", ti.name, err)
		}
		if out == nil {
			out = []byte{}
		}
		return out, nil
	}
	out, _, err := body.RewriteModel(raw, ti.quoted)
	if err != nil {
		return nil, fmt.Errorf("httpmw: cannot rewrite the model for tier %s (%w); not sending the request with the wrong model", ti.name, err)
	}
	return out, nil
}

// bytesBody is a replayable in-memory body: one allocation per attempt.
type bytesBody struct{ bytes.Reader }

func newBytesBody(b []byte) *bytesBody {
	r := &bytesBody{}
	r.Reset(b)
	return r
}

func (*bytesBody) Close() error { return nil }

type onceBody struct {
	io.Reader
	rc io.ReadCloser
}

func (b *onceBody) Close() error { return b.rc.Close() }

// chunksBody reads a body kept in pieces.
type chunksBody struct {
	chunks [][]byte
	off    int // in chunks[0]
}

func (r *chunksBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(r.chunks) > 0 {
		m := copy(p[n:], r.chunks[0][r.off:])
		n += m
		r.off += m
		if r.off == len(r.chunks[0]) {
			r.chunks, r.off = r.chunks[1:], 0
		}
	}
	if n == 0 && len(r.chunks) == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// WriteTo writes the pieces without a copy through a buffer.
func (r *chunksBody) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for len(r.chunks) > 0 {
		c := r.chunks[0][r.off:]
		m, err := w.Write(c)
		n += int64(m)
		r.off += m
		if err == nil && m < len(c) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return n, err
		}
		r.chunks, r.off = r.chunks[1:], 0
	}
	return n, nil
}

func (*chunksBody) Close() error { return nil }

// getBodyRaw reads a GetBody body once, in one buffer of its size, and
// keeps it in b.raw for the rewrites and the affinity key. b.mu is held.
// A body longer than WithMaxBodyBuffer is errTooLongToRewrite.
func (b *reqBody) getBodyRaw(t *Transport) ([]byte, error) {
	if b.raw != nil {
		return b.raw, nil
	}
	rc, err := b.req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("httpmw: Request.GetBody: %w", err)
	}
	raw, err := readSized(rc, t.maxBody+1, b.req.ContentLength)
	_ = rc.Close()
	if err != nil {
		return nil, fmt.Errorf("httpmw: reading the request body: %w", err)
	}
	if int64(len(raw)) > t.maxBody {
		return nil, errTooLongToRewrite
	}
	if raw == nil {
		raw = []byte{}
	}
	b.raw = raw
	return raw, nil
}
