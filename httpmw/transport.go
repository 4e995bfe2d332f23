package httpmw

import (
	"go.opentelemetry.io/otel/trace"

	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/body"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/pipeline"
	"github.com/sturdyai/sturdy/internal/telemetry"
	"github.com/sturdyai/sturdy/ratelimit"
)

// ScopeName is the OpenTelemetry instrumentation scope of the Transport.
const ScopeName = "github.com/sturdyai/sturdy/httpmw"

// errorBodyLimit is how much of an error response the attempt reads into
// memory, so that the connection is reused and the body stays readable
// after the attempt's context ends.
const errorBodyLimit = body.DrainLimit

var (
	// ErrTTFB is the outcome error of an attempt that missed the
	// time-to-first-byte timeout (class Timeout).
	ErrTTFB       = errors.New("httpmw: no first byte within the time-to-first-byte timeout")
	errNoResponse = errors.New("httpmw: base RoundTripper returned neither a response nor an error")
	errEmptyEvent = errors.New("httpmw: event stream ended before its first byte")
	errClosed     = errors.New("httpmw: Transport is closed")
)

type tierState struct {
	index   int // the tier's index in the chain
	slot    int // the request body's rewrite cache slot (reqBody.rewrittenFor)
	name    string
	model   string
	quoted  []byte // JSON string of model; nil: no rewrite
	nameHdr []string
	hedged  bool // attempts may run at once: each gets a header map of its own
	size    int  // endpoints in the tier
	eps     []*endpoint
}

// endpoint returns the tier's endpoint named name, or nil. Comparing a few
// names costs less than hashing one: the map is for large tiers.
func (ts *tierState) endpoint(name string, byName map[string]*endpoint) *endpoint {
	if len(ts.eps) <= 8 {
		for _, e := range ts.eps {
			if e.name == name {
				return e
			}
		}
	}
	return byName[name]
}

// Transport is an http.RoundTripper that sends each request to the
// endpoints of a chain of model tiers, with load balancing, failover,
// hedging, rate limits, fallback to other models and health tracking, and
// records OpenTelemetry spans and metrics. Build it with NewTransport. It
// is safe for concurrent use. Close it to stop its health probes.
type Transport struct {
	base        http.RoundTripper
	pl          *pipeline.Pipeline
	chain       *chain.Chain
	tel         *telemetry.Telemetry
	tiers       []*tierState
	targets     []*tierState // endpoints' own model names (deployments), after the tiers in a body's rewrite cache
	byName      map[string]*endpoint
	names       []string
	classify    Classifier
	rewrite     ModelRewrite
	keys        *keyer // nil unless the tiers balance by affinity
	maxBody     int64
	ttfb        time.Duration
	respTimeout time.Duration // WithResponseTimeout
	checkTerm   bool
	passCreds   bool
	errResps    bool // WithErrorResponses
	reuse       bool // the sent requests' URLs and headers are recycled (sentParts); WithoutRequestReuse
	hasTokens   bool
	hasWindows  bool // some tier has a ContextWindow: estimate prompt sizes
	loads       bool // WithLoadReports
	closeOnce   sync.Once
	closed      atomic.Bool
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport over base (nil means
// http.DefaultTransport) configured by opts. It needs at least one tier
// (WithTier) with at least one endpoint; a configuration that cannot work
// is an error that names every option or field to fix, returned before
// anything is started.
func NewTransport(base http.RoundTripper, opts ...Option) (*Transport, error) {
	cfg := config{maxBody: DefaultMaxBodyBuffer}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if base == nil {
		base = http.DefaultTransport
	}
	bad := func(format string, args ...any) { cfg.Errs = append(cfg.Errs, fmt.Errorf("httpmw: "+format, args...)) }
	if cfg.maxBody < 0 {
		bad("WithMaxBodyBuffer(%d): it must not be negative", cfg.maxBody)
	}
	if cfg.ttfb < 0 {
		bad("WithTTFBTimeout(%v): it must not be negative", cfg.ttfb)
	}
	if cfg.respTimeout < 0 {
		bad("WithResponseTimeout(%v): it must not be negative", cfg.respTimeout)
	}
	t := &Transport{
		base:        base,
		byName:      map[string]*endpoint{},
		classify:    cfg.classifier,
		rewrite:     cfg.rewrite,
		maxBody:     cfg.maxBody,
		ttfb:        cfg.ttfb,
		respTimeout: cfg.respTimeout,
		checkTerm:   !cfg.noTerm,
		reuse:       !cfg.noReuse,
		passCreds:   cfg.CallerCredentials,
		errResps:    cfg.errResponses,
		loads:       cfg.LoadReports,
	}
	if t.classify == nil {
		t.classify = Classify
	}
	var eps []*endpoint // endpoints with a deployment name of their own
	for i, tc := range cfg.Tiers {
		name := cmp.Or(tc.Name, chain.DefaultTierName(i))
		ts := &tierState{index: i, slot: i, name: name, model: tc.Model, nameHdr: []string{name}, size: len(cfg.eps[i])}
		if i > 0 && tc.Model != "" {
			ts.quoted = body.QuoteModel(tc.Model)
		}
		t.tiers = append(t.tiers, ts)
		t.hasWindows = t.hasWindows || tc.ContextWindow > 0
		t.hasTokens = t.hasTokens || tc.Limit.TokensPerMinute > 0
		for _, e := range cfg.eps[i] {
			ep, err := newEndpoint(e, i)
			if err != nil {
				bad("%s: %v", pipeline.TierName(i, name), err)
				continue
			}
			if t.loads {
				ep.askLoadReports()
			}
			if _, dup := t.byName[ep.name]; !dup && ep.name != "" {
				t.byName[ep.name] = ep
				t.names = append(t.names, ep.name)
				ts.eps = append(ts.eps, ep)
			}
			if e.Model != "" && e.Model != tc.Model {
				eps = append(eps, ep)
			}
			if e.QuotaKey != "" {
				if cfg.QuotaKeys == nil {
					cfg.QuotaKeys = map[string]string{}
				}
				cfg.QuotaKeys[e.Name] = e.QuotaKey
			}
			if e.Limit != (ratelimit.Limit{}) {
				t.hasTokens = t.hasTokens || e.Limit.TokensPerMinute > 0
				if cfg.EndpointLimits == nil {
					cfg.EndpointLimits = map[string]ratelimit.Limit{}
				}
				cfg.EndpointLimits[e.Name] = e.Limit
			}
		}
	}
	// An endpoint that knows the tier's model by a name of its own (a
	// deployment) gets its body rewritten to that name, whatever the
	// tier, in a rewrite cache slot after the tiers'.
	for _, ep := range eps {
		ts := t.tiers[ep.tier]
		ep.target = &tierState{index: ts.index, slot: len(t.tiers) + len(t.targets), name: ts.name, model: ep.model, quoted: body.QuoteModel(ep.model)}
		t.targets = append(t.targets, ep.target)
	}
	cfg.Errs = append(cfg.Errs, checkAffinity(&cfg)...)
	if makesClientSpans(base) {
		cfg.AttemptSpanKind = trace.SpanKindInternal
	}
	pl, err := pipeline.Build(&cfg.Config, pipeline.Protocol{Op: "httpmw", Scope: ScopeName})
	if err != nil {
		return nil, err
	}
	t.pl, t.chain, t.tel = pl, pl.Chain, pl.Tel
	t.keys = newKeyer(pl.Affinity, cfg.keyHook)
	for i, ts := range t.tiers {
		ts.hedged = pl.Chain.Hedged(i)
	}
	pl.StartProbes(&prober{t: t, path: cfg.probePath}, func(name string) bool { return t.byName[name].noProbe })
	return t, nil
}

// Close stops the health probes and waits for them, and stops the
// observable metrics. It does not close the base RoundTripper's idle
// connections (see CloseIdleConnections). RoundTrip after Close fails.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		_ = t.pl.Close()
	})
	return nil
}

// CloseIdleConnections closes the base RoundTripper's idle connections,
// if it has that method (http.Client.CloseIdleConnections calls it).
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Stats returns the fallback chain's accounting: calls served per tier,
// their shares, failures, fallbacks and the expected quality.
func (t *Transport) Stats() degrade.Stats { return degrade.Stats(t.chain.Stats()) }

// Endpoints returns the endpoint names, tier by tier in configuration
// order.
func (t *Transport) Endpoints() []string { return append([]string(nil), t.names...) }

// Tiers returns the tier names, primary first.
func (t *Transport) Tiers() []string {
	out := make([]string, len(t.tiers))
	for i, ts := range t.tiers {
		out[i] = ts.name
	}
	return out
}

// EndpointTier returns the name of the tier of the endpoint named name.
func (t *Transport) EndpointTier(name string) (string, bool) {
	ep, ok := t.byName[name]
	if !ok {
		return "", false
	}
	return t.tiers[ep.tier].name, true
}

// State returns the health state of the endpoint named name.
func (t *Transport) State(name string) health.State { return t.pl.Tracker.State(name) }

// Availability returns the availability figures of the endpoint named
// name (uptime, MTBF, MTTR, availability), and false for an unknown name.
func (t *Transport) Availability(name string) (health.Availability, bool) {
	return t.pl.Tracker.Availability(name)
}

// call is one RoundTrip's state, shared by its attempts, and, once the
// call is served, what the response body still holds of it until its
// release (respBody.c).
type call struct {
	dc   chain.Call[*http.Response] // Fn, Cleanup and Store are bound once (calls)
	scan body.StreamScanner         // reads whether the call streams (timeoutFor resets it)
	callState
}

// callState is what a call clears when it goes back to the pool: in one
// piece, which costs less than field by field.
type callState struct {
	t    *Transport
	req  *http.Request
	body reqBody
	to   callTimeout // each attempt's timeout

	// next is the state of the attempt about to run, made by store with
	// its context, which the attempt takes (sequential attempts only).
	next *attemptState

	// Set once the call is served; the response body reports them at its
	// release.
	served chain.Served
	tc     telemetry.Call
}

// calls recycles call states with their attempt func already bound, so
// that a call costs neither the struct nor the method value. A call that
// failed is free once chain.Run has returned: every attempt has returned
// by then, and nothing handed to the caller points back to it. A served
// call is the response body's until the body releases it (respBody.c),
// at EOF, a read error or Close.
var calls = sync.Pool{New: func() any {
	c := new(call)
	c.dc.Fn = c.attempt
	c.dc.Cleanup = discard
	c.dc.Store = c.store
	return c
}}

func getCall(t *Transport, req *http.Request) *call {
	c := calls.Get().(*call)
	c.t, c.req = t, req
	return c
}

func putCall(c *call) {
	c.callState = callState{}
	c.dc.Once, c.dc.Tokens, c.dc.PromptTokens, c.dc.Exclude, c.dc.Start = false, 0, 0, nil, time.Time{}
	calls.Put(c)
}

// RoundTrip implements http.RoundTripper. It never modifies req, always
// closes req.Body, and returns either a response or an error, never both.
// See the package doc for what it does.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeReqBody(req)
		return nil, errors.New("httpmw: nil Request.URL")
	}
	if t.closed.Load() {
		closeReqBody(req)
		return nil, errClosed
	}
	if req.Response != nil {
		return t.redirect(req)
	}
	// One clock reading starts the call's telemetry and, unless reading
	// the request body comes first, its first attempt.
	now := time.Now()
	ctx, tc := t.tel.StartCallAt(req.Context(), now)
	c := getCall(t, req)
	resp, held, err := c.roundTrip(ctx, tc, now)
	if !held {
		putCall(c)
	}
	return resp, err
}

// roundTrip is RoundTrip once the call has its state. held says that the
// response body holds c (respBody.c) and gives it back to the pool at its
// release; otherwise RoundTrip does, at once.
func (c *call) roundTrip(ctx context.Context, tc telemetry.Call, start time.Time) (_ *http.Response, held bool, _ error) {
	t, req := c.t, c.req
	err := c.body.init(req, t.maxBody)
	if err != nil {
		t.tel.RecordCall(tc, -1, "", sturdy.Fatal, 0)
		tc.End()
		return nil, false, err
	}
	if c.body.mode == bodyNone || c.body.mode == bodyGetBody {
		// init read nothing: the first attempt starts when the call did.
		c.dc.Start = start
	}
	if c.to, err = c.timeoutFor(); err != nil {
		c.body.finish()
		t.tel.RecordCall(tc, -1, "", sturdy.Fatal, 0)
		tc.End()
		return nil, false, err
	}
	c.dc.Once = c.body.once()
	// A server's token quota (rate-limit headers) may pace an endpoint
	// by tokens while learning is on: estimate whenever it might.
	if (t.hasTokens || t.chain.Listens()) && req.ContentLength > 0 {
		c.dc.Tokens = req.ContentLength / 4 // about 4 bytes a token
	}
	if t.hasWindows && req.ContentLength > 0 {
		// A deliberate underestimate (5 bytes a token, JSON included), so
		// that a tier is skipped only when the prompt clearly exceeds its
		// window; a borderline prompt still gets the server's answer.
		c.dc.PromptTokens = int(req.ContentLength / 5)
	}
	if t.keys != nil {
		ctx = t.keys.withKey(ctx, c)
	}
	// The call's served state goes straight where the response body
	// reads it at its release (c.served).
	resp, err := chain.Run(ctx, t.chain, &c.dc, &c.served)
	c.dc.Start = time.Time{}
	if err != nil && !c.dc.Once {
		resp, err = c.misrouted(ctx, resp, err)
	}
	c.body.finish()
	if err != nil {
		resp, err = c.failed(tc, resp, err)
		return resp, false, err
	}
	served := &c.served
	w, _ := resp.Body.(*respBody)
	if w == nil {
		// Cannot happen: attempt wraps every success. Be safe anyway.
		served.Release(-1)
		t.tel.RecordCall(tc, served.Tier, served.Attempt().Endpoint.Name, sturdy.Success, served.Attempt().N)
		tc.End()
		resp.Request = req
		return resp, false, nil
	}
	c.tc = tc
	// Without GenAI metrics (no MeterProvider), the endpoint is not even
	// looked up.
	if !tc.Quiet() && t.tel.GenAIEnabled(req.Context()) {
		if ep := t.byName[served.Attempt().Endpoint.Name]; ep != nil {
			if g := c.genAIFor(ep, t.tiers[served.Tier]); g != nil {
				g.sse, g.firstByte = isStream(resp), served.Outcome().End
				g.tel, g.call = t.tel, tc
				x := w.scans(g)
				x.usageMu.Lock()
				x.gen = g
				// The head the attempt read is handed out by Read, which
				// scans it then.
				x.usageMu.Unlock()
			}
		}
	}
	resp.Request = req
	// The first byte came when the winning attempt ended; the call ends
	// with its body (respBody.release).
	t.tel.RecordFirstByte(tc, served.Outcome().End, served.Tier)
	w.c = c // last: from here on the body owns the call
	return resp, true, nil
}

// errMisrouted is the failure an endpoint's health learns when it answered
// 404 or 400 to a request that another endpoint of its tier then served.
var errMisrouted = errors.New("httpmw: answered 404 or 400 to a request another endpoint of its tier served (a wrong base path or a missing deployment?)")

// misrouted retries a call that failed with one endpoint's 404 or 400 on
// the other endpoints of its tier (and on, as any call): such an answer
// is the caller's fault only if the others give it too. If another
// endpoint of the same tier serves the call, the first endpoint is at
// fault (a wrong base path, a deployment it lacks): its health learns a
// failure, so that it is ejected as any failing endpoint, and the call is
// served. Otherwise the first answer stands.
//
// A call it serves has its served state in c.served, as chain.Run leaves
// it.
func (c *call) misrouted(ctx context.Context, resp *http.Response, err error) (*http.Response, error) {
	se, ok := errors.AsType[*sturdy.Error](err)
	if !ok || se.Class != sturdy.Fatal || resp == nil || resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
		return resp, err
	}
	x := c.t.byName[se.Endpoint]
	if x == nil || c.t.tiers[x.tier].size < 2 || attempt.CallerErr(ctx) != nil {
		return resp, err
	}
	c.dc.Exclude = []string{x.name}
	again, err2 := chain.Run(ctx, c.t.chain, &c.dc, &c.served)
	c.dc.Exclude = nil
	if err2 != nil {
		if again != nil {
			discard(again)
		}
		return resp, err
	}
	if ep := c.t.byName[c.served.Attempt().Endpoint.Name]; ep != nil && ep.tier == x.tier {
		c.t.pl.Tracker.Observe(x.name, sturdy.Outcome{Class: sturdy.Unavailable, Err: errMisrouted})
	}
	discard(resp)
	return again, nil
}

// failed turns a call that no tier served into what RoundTrip returns:
// the deciding attempt's HTTP response when it had one (marked so that
// the client does not retry it), else the *sturdy.Error.
func (c *call) failed(tc telemetry.Call, resp *http.Response, err error) (*http.Response, error) {
	se, ok := errors.AsType[*sturdy.Error](err)
	if !ok {
		se = &sturdy.Error{Class: sturdy.ClassOf(err), Err: err}
	} else {
		cp := *se
		se = &cp
	}
	se.Op = "httpmw"
	tier := -1 // the deciding attempt's tier; none if no attempt went out
	if ep := c.t.byName[se.Endpoint]; ep != nil {
		tier = ep.tier
	}
	c.t.tel.RecordCall(tc, tier, se.Endpoint, se.Class, len(se.Attempts))
	c.recordFailedGenAI(tc, se.Endpoint, se.Class)
	tc.End()
	if resp != nil && se.Class != sturdy.Canceled {
		if w, ok := resp.Body.(*respBody); ok {
			// A success that the call still discarded cannot come back
			// here; this is defensive.
			w.discard()
			return nil, se
		}
		h := resp.Header
		h.Set(HeaderShouldRetry, "false")
		if s := attemptsSummary(se.Attempts); s != "" {
			h.Set(HeaderAttempts, s)
		}
		resp.Request = withCallError(c.req, se)
		return resp, nil
	}
	if resp != nil {
		discard(resp)
	}
	if c.t.answersWithResponse(c.req, se) {
		return errorResponse(c.req, se), nil
	}
	return nil, se
}

func attemptsSummary(as []sturdy.Attempt) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Endpoint)
		b.WriteByte(':')
		b.WriteString(a.Class.String())
	}
	return b.String()
}

// store makes the state of the sequential attempt about to run, with the
// memory of its own context (chain.Call.Store): one allocation for both.
func (c *call) store() *attempt.ContextStore {
	c.next = new(attemptState)
	return &c.next.ctx
}

// attempt runs one attempt on a.Endpoint: route a copy of the request,
// send it, classify the answer and, for a success with a body, wait for
// the first body byte.
func (c *call) attempt(ctx context.Context, a attempt.Info) (*http.Response, sturdy.Outcome) {
	t := c.t
	ts := t.tiers[a.Tier]
	ep := ts.endpoint(a.Endpoint.Name, t.byName)
	if ep == nil {
		return nil, sturdy.Outcome{Class: sturdy.Fatal, Err: fmt.Errorf("httpmw: unknown endpoint %q", a.Endpoint.Name)}
	}
	var (
		rc      io.ReadCloser
		getBody func() (io.ReadCloser, error)
		n       int64
		err     error
	)
	rw := ts
	if ep.target != nil {
		rw = ep.target // the endpoint's own name for the model, whatever the tier
	}
	if rw.quoted != nil || (a.Tier > 0 && t.rewrite != nil && rw.model != "") {
		rc, getBody, n, err = c.body.rewrittenFor(t, rw)
	} else {
		rc, getBody, n, err = c.body.plain()
	}
	if err != nil {
		return nil, sturdy.Outcome{Class: sturdy.Fatal, Err: err}
	}

	var cancel context.CancelCauseFunc
	var timer *attempt.Timer
	cause := c.to.cause
	if c.to.d > 0 {
		ctx, cancel = context.WithCancelCause(ctx)
		timer = attempt.StartTimer(time.Time{}, c.to.d, cancel, cause)
	}
	// A copy, never the caller's request: RoundTrippers must not modify
	// it (net/http.RoundTripper's contract).
	var st *attemptState
	if a.Stored {
		// Made by store with the attempt's own context; only a
		// sequential attempt, on the loop's goroutine, touches c.next.
		st, c.next = c.next, nil
	} else {
		st = new(attemptState)
	}
	parts := getSentParts(t.reuse)
	out := ep.request(&st.req, &parts.url, ctx, c.req, t.passCreds, !ts.hedged && !c.to.strip, &parts.hdr)
	if c.to.strip {
		stripTimeoutHeaders(out.Header) // the attempt's own map: share was off
	}
	out.Body, out.GetBody, out.ContentLength = rc, getBody, n
	// While sturdy makes no spans, ctx holds none of its own to annotate
	// (a caller's span is the caller's): not even the lookup is needed.
	var sp trace.Span
	recording := false
	if !t.tel.SpansOff() {
		sp = trace.SpanFromContext(ctx)
		recording = sp.IsRecording()
	}
	if recording {
		setRequestAttrs(sp, ep, out)
	}

	resp, err := t.base.RoundTrip(out)
	if err != nil && resp != nil {
		// A broken base RoundTripper; never pass both on.
		body.Drain(resp.Body, 0)
		resp = nil
	}
	if err == nil && resp == nil {
		err = errNoResponse
	}
	if recording && resp != nil {
		sp.SetAttributes(statusAttrs(resp.StatusCode)...)
	}
	o := t.classify(resp, err)
	if t.loads {
		o.Load = loadReport(resp)
	}
	if err != nil {
		o = ttfbOutcome(ctx, o, timer, cause)
		if cancel != nil {
			cancel(err)
		}
		return nil, o
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	// The server's rate-limit headers pace the endpoint before its 429.
	// A failure's are always read; a success's when the endpoint's last
	// read ones had some, or one in chain.ListenSample, which spares a
	// server that never sends them a pass over every header map.
	if o.Class != sturdy.Success {
		if t.chain.Listen(a.Endpoint.Name, resp.Header) {
			ep.listen.Heard(true)
		}
	} else if t.chain.Listens() && ep.listen.Want() {
		ep.listen.Heard(t.chain.Listen(a.Endpoint.Name, resp.Header))
	}
	resp.Header[HeaderEndpoint] = ep.nameHdr
	resp.Header[HeaderTier] = ts.nameHdr

	if o.Class != sturdy.Success {
		// The TTFB timeout bounds the error body too: a 503 whose body
		// never comes must not hold the attempt (and the call) past it.
		bufferErrorBody(resp, cancel)
		return resp, ttfbOutcome(ctx, o, timer, cause)
	}

	w := &st.body
	w.rc = resp.Body
	if t.reuse {
		w.parts = parts
	}
	ct := contentType(resp.Header)
	stream := isEventStream(ct)
	scanUse := (t.hasTokens || t.chain.PacesTokens()) && (stream || isJSON(ct))
	if cancel != nil || stream || scanUse {
		// Not a plain answer: it needs a bodyScan, and reads a wide head.
		x := w.scans(nil)
		x.cancel, x.sse, x.scanUse = cancel, t.checkTerm && stream, scanUse
		if scanUse {
			x.usage = newUsageScanner()
		}
		w.wide = true
	} else {
		w.sized = resp.ContentLength > 1
	}
	resp.Body = w
	if !expectsBody(out, resp) {
		timer.Stop()
		return resp, o
	}
	// Wait for the first body byte: until it comes, failing over or
	// hedging is still possible, and for a stream it is the real answer.
	var nr int
	var rerr error
	head := w.head()
	for nr == 0 && rerr == nil {
		nr, rerr = w.rc.Read(head)
	}
	fired := timer.Stop()
	if fired || (rerr != nil && rerr != io.EOF) || (nr == 0 && w.x != nil && w.x.sse) {
		if rerr == nil || rerr == io.EOF {
			rerr = errEmptyEvent
			if fired {
				rerr = cause
			}
		}
		o = ttfbOutcome(ctx, sturdy.Outcome{Class: sturdy.ClassOf(rerr), Err: rerr}, nil, cause)
		if fired {
			o = sturdy.Outcome{Class: sturdy.Timeout, Err: cause}
		}
		w.discard()
		return nil, o
	}
	// rerr is nil or io.EOF here.
	w.headEnd, w.headEOF = uint8(nr), rerr == io.EOF
	if stream && startsWithErrorEvent(head[:nr]) {
		// A stream that failed after its 200: nothing reached the caller
		// yet, so the call may still fail over or fall back.
		ev, _ := readFirstEvent(w.rc, head[:nr])
		w.discard()
		return nil, classifyErrorEvent(bytes.ToLower(ev))
	}
	return resp, o
}

// contentType is resp.Header.Get("Content-Type") without canonicalising
// a key that is canonical already.
func contentType(h http.Header) string {
	if v := h["Content-Type"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ttfbOutcome turns the failure of an attempt whose context its timer
// (TTFB or response timeout) cancelled with cause into a Timeout. It stops
// timer (which may be nil): call it once per attempt, as a timer must be
// stopped exactly once.
func ttfbOutcome(ctx context.Context, o sturdy.Outcome, timer *attempt.Timer, cause error) sturdy.Outcome {
	timer.Stop()
	if cause != nil && context.Cause(ctx) == cause {
		return sturdy.Outcome{Class: sturdy.Timeout, Err: cause}
	}
	return o
}

// expectsBody reports whether resp has a body to wait for.
func expectsBody(req *http.Request, resp *http.Response) bool {
	if req.Method == http.MethodHead || resp.ContentLength == 0 || resp.Body == nil || resp.Body == http.NoBody {
		return false
	}
	return resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified
}

// bufferErrorBody reads an error response's body into memory (up to
// errorBodyLimit), so that its connection goes back to the pool at once
// and the body stays readable after the attempt's context ends. A longer
// body keeps its tail on the wire.
func bufferErrorBody(resp *http.Response, cancel context.CancelCauseFunc) {
	rc := resp.Body
	if rc == nil || rc == http.NoBody {
		if cancel != nil {
			cancel(errBodyClosed)
		}
		return
	}
	buf, err := io.ReadAll(io.LimitReader(rc, errorBodyLimit+1))
	if err == nil && len(buf) <= errorBodyLimit {
		_ = rc.Close()
		if cancel != nil {
			cancel(errBodyClosed)
		}
		resp.Body = newBytesBody(buf)
		resp.ContentLength = int64(len(buf))
		return
	}
	resp.Body = &prefixBody{prefix: buf, rc: cancelOnClose{rc, cancel}, err: err}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	if c.cancel != nil {
		c.cancel(errBodyClosed)
	}
	return err
}

// discard is the Cleanup of chain.Call: it drains (bounded) and closes a
// response the call does not keep, so that its connection can be reused.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	if w, ok := resp.Body.(*respBody); ok {
		w.discard()
		return
	}
	body.Drain(resp.Body, body.DrainLimit)
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
