package httpmw

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/body"
	"github.com/sturdyai/sturdy/internal/telemetry"
)

// DefaultProvider is the gen_ai.provider.name of an endpoint whose
// Provider is empty: httpmw speaks the OpenAI API, and the GenAI
// conventions name a provider by the format its telemetry follows.
const DefaultProvider = "openai"

// genAIOperation maps a request path to gen_ai.operation.name; "" means
// not a GenAI operation, which gets no GenAI metrics.
func genAIOperation(path string) string {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return "chat"
	case strings.HasSuffix(path, "/completions"):
		return "text_completion"
	case strings.HasSuffix(path, "/embeddings"):
		return "embeddings"
	}
	return ""
}

// genState is what a call's GenAI metrics need from its response body,
// gathered as the caller reads it. It is allocated only for GenAI
// operations while GenAI metrics are on.
type genState struct {
	g                  telemetry.GenAI
	input, output      usageScanner
	head               [256]byte // the body's first bytes, where "model" is
	nHead              int
	firstByte, last    time.Time // first chunk, end of the last chunk
	chunks             int       // SSE events completed
	prevNL, sse, chunk bool
	chunkSets          *telemetry.GenAISets // before the response: no response model
	ep                 *endpoint
	// tel and call record the chunks (write): the body's Read has them
	// here, not from the call, which Close may release meanwhile.
	tel  *telemetry.Telemetry
	call telemetry.Call
	// scan is the response body's bodyScan when the body had none of its
	// own (a plain answer): one allocation for both.
	scan bodyScan
}

func newGenState(op, provider string) *genState {
	return &genState{
		g:      telemetry.GenAI{Operation: op, Provider: provider},
		input:  newKeyScanner(keyPrompt),
		output: newKeyScanner(keyCompletion),
	}
}

// write scans p for the token counts and the response model and, in an
// event stream, times each chunk (SSE event) after the first.
func (s *genState) write(p []byte) {
	tel, call := s.tel, s.call
	s.input.write(p)
	s.output.write(p)
	if s.nHead < len(s.head) {
		s.nHead += copy(s.head[s.nHead:], p)
	}
	if !s.sse {
		return
	}
	// An event ends at a blank line: two newlines in a row, "\r"
	// ignored. Events that end in one read share its time evenly.
	ended := 0
	for _, c := range p {
		switch c {
		case '\n':
			if s.prevNL {
				ended++
			}
			s.prevNL = true
		case '\r':
		default:
			s.prevNL = false
		}
	}
	if ended == 0 {
		return
	}
	now := time.Now()
	if s.chunks == 0 {
		// The first chunk came with the first byte.
		s.chunks, ended, s.last = 1, ended-1, s.firstByte
	}
	if ended == 0 {
		return
	}
	if s.chunkSets == nil {
		s.chunkSets = s.ep.genAISets(tel, &s.g)
	}
	d := now.Sub(s.last) / time.Duration(ended)
	for range ended {
		tel.RecordChunk(call, s.chunkSets, d)
	}
	s.chunks += ended
	s.last = now
}

// tokens returns the input and output token counts seen, -1 if none.
func (s *genState) tokens() (in, out int64) { return s.input.tokens(), s.output.tokens() }

// responseModel returns the "model" of the body's head: the JSON object
// of a response, or of a stream's first event (from its first '{', past
// "data: " and any event or comment lines).
func (s *genState) responseModel() string {
	b := s.head[:s.nHead]
	if s.sse {
		if i := bytes.IndexByte(b, '{'); i >= 0 {
			b = b[i:]
		}
	}
	return findModel(b)
}

// findModel returns the string value of b's top-level "model" key (see
// body.Model: the same reading the rewrite of a fallback tier's model
// uses), or "" when there is none or it is longer than 256 bytes, which no
// metric attribute should carry.
func findModel(b []byte) string {
	if m, ok := body.Model(b); ok && len(m) <= 256 {
		return m
	}
	return ""
}

// requestModel returns the model the call's request asked tier ts for:
// the tier's own after a rewrite, else the caller's from the body; ""
// when unknown. Adapters ask once the chain has run, when no rewrite can
// follow, so a GetBody body not already read for a rewrite is read into
// a pooled buffer and not kept: reading a fresh one for every call was a
// large part of the GenAI metrics' cost (BenchmarkTelemetry in the bench
// module).
func (b *reqBody) requestModel(t *Transport, ts *tierState) string {
	if ts != nil && ts.index > 0 && ts.model != "" {
		return ts.model
	}
	switch b.mode {
	case bodyBuffered:
		b.mu.Lock()
		defer b.mu.Unlock()
		return findModel(b.flat())
	case bodyOnce:
		return findModel(b.buf) // the start, if in one piece
	case bodyGetBody:
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.raw != nil {
			return findModel(b.raw)
		}
		rc, err := b.req.GetBody()
		if err != nil {
			return ""
		}
		defer rc.Close()
		bp := modelBufs.Get().(*[]byte)
		defer putModelBuf(bp)
		*bp, _ = readInto((*bp)[:0], rc, t.maxBody+1)
		return findModel(*bp) // a copy: findModel's string does not share the buffer
	}
	return ""
}

// modelBufs are the buffers requestModel reads GetBody bodies into.
var modelBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuf is the largest buffer modelBufs keeps: a rare huge body
// must not pin its buffer.
const maxPooledBuf = 64 << 10

func putModelBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		modelBufs.Put(bp)
	}
}

// readInto appends at most limit bytes of r to buf.
func readInto(buf []byte, r io.Reader, limit int64) ([]byte, error) {
	lr := io.LimitedReader{R: r, N: limit}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// genAIFor starts the GenAI record of a call on endpoint ep of tier ts,
// or returns nil when it gets none.
func (c *call) genAIFor(ep *endpoint, ts *tierState) *genState {
	t := c.t
	if !t.tel.GenAIEnabled(c.req.Context()) {
		return nil
	}
	op := genAIOperation(c.req.URL.Path)
	if op == "" {
		return nil
	}
	provider := DefaultProvider
	if ep != nil {
		provider = ep.provider
	}
	s := newGenState(op, provider)
	s.ep = ep
	if ep != nil {
		s.g.Server = ep.server
	}
	s.g.RequestModel = c.body.requestModel(t, ts)
	return s
}

// recordFailedGenAI records the GenAI duration of a call that failed with
// class on endpoint name (the deciding attempt's; "" if none went out).
func (c *call) recordFailedGenAI(tc telemetry.Call, name string, class sturdy.Class) {
	ep := c.t.byName[name]
	var ts *tierState
	if ep != nil {
		ts = c.t.tiers[ep.tier]
	}
	if s := c.genAIFor(ep, ts); s != nil {
		s.g.ErrorType = class.String()
		c.t.tel.RecordGenAI(tc, ep.genAISets(c.t.tel, &s.g), time.Time{}, -1, -1)
	}
}

// isStream reports whether resp is an event stream.
func isStream(resp *http.Response) bool { return isEventStream(contentType(resp.Header)) }

// genKey is one combination of GenAI attribute values on an endpoint.
type genKey struct{ op, reqModel, respModel, errType string }

// genAISets returns the cached attribute sets of g on endpoint ep (nil:
// none went out, nothing cached).
func (ep *endpoint) genAISets(tel *telemetry.Telemetry, g *telemetry.GenAI) *telemetry.GenAISets {
	if ep == nil {
		return tel.Sets(g)
	}
	k := genKey{op: g.Operation, reqModel: g.RequestModel, respModel: g.ResponseModel, errType: g.ErrorType}
	if v, ok := ep.genai.Load(k); ok {
		return v.(*telemetry.GenAISets)
	}
	v, _ := ep.genai.LoadOrStore(k, tel.Sets(g))
	return v.(*telemetry.GenAISets)
}
