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
type reqBody struct {
	mode    bodyMode
	req     *http.Request
	claimed atomic.Bool // req.Body (GetBody mode) or rest (Once mode) went to an attempt
	buf     []byte
	rest    io.ReadCloser
	getBuf  func() (io.ReadCloser, error)

	mu        sync.Mutex
	raw       []byte   // GetBody mode: the body, read for a rewrite
	rewritten [][]byte // by tier index
	rwErr     []error
}

// init decides how the request body is replayed. It reads (and closes) a
// body without GetBody up to maxBuf+1 bytes.
func (b *reqBody) init(req *http.Request, maxBuf int64) error {
	b.req = req
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		b.mode = bodyNone
	case req.GetBody != nil:
		b.mode = bodyGetBody
	default:
		buf, err := io.ReadAll(io.LimitReader(req.Body, maxBuf+1))
		if err != nil {
			_ = req.Body.Close()
			return fmt.Errorf("httpmw: reading the request body: %w", err)
		}
		if int64(len(buf)) <= maxBuf {
			_ = req.Body.Close()
			b.mode, b.buf = bodyBuffered, buf
			b.getBuf = func() (io.ReadCloser, error) { return newBytesBody(buf), nil }
		} else {
			b.mode, b.buf, b.rest = bodyOnce, buf, req.Body
		}
	}
	return nil
}

// once reports whether the body cannot be replayed.
func (b *reqBody) once() bool { return b.mode == bodyOnce }

// finish closes what no attempt took.
func (b *reqBody) finish() {
	if b.claimed.CompareAndSwap(false, true) {
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
		return newBytesBody(b.buf), b.getBuf, int64(len(b.buf)), nil
	default: // bodyOnce
		if !b.claimed.CompareAndSwap(false, true) {
			return nil, nil, 0, errUnreplayable
		}
		return &onceBody{Reader: io.MultiReader(bytes.NewReader(b.buf), b.rest), rc: b.rest}, nil, b.req.ContentLength, nil
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
		raw = b.buf
	case bodyOnce:
		return nil, errTooLongToRewrite
	case bodyGetBody:
		if b.raw == nil {
			rc, err := b.req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("httpmw: Request.GetBody: %w", err)
			}
			raw, err = io.ReadAll(io.LimitReader(rc, t.maxBody+1))
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
		}
		raw = b.raw
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
