package grpcmw

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw/internal/grpcload"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/telemetry"
)

// A stream goes through three phases:
//
//   - open: nothing has gone out. SendMsg and CloseSend are recorded (the
//     sent messages are kept for replay, up to the replay limits).
//   - deciding: chain.Run is choosing the endpoint. It starts at the
//     first RecvMsg or Header, or when the replay buffer overflows. Each
//     attempt opens a stream on its endpoint, replays what the caller sent
//     and then waits for the first response message (RecvMsg) or the
//     headers (Header); an attempt that fails before that is classified
//     and the next one replays the same messages elsewhere. SendMsg calls
//     made meanwhile are buffered and also sent to the attempt in flight.
//   - committed: one attempt won; every call goes straight to its stream
//     and errors surface to the caller. The stream's resources (the
//     winner's balancer report, rate-limit permit, spans and context) are
//     released when RecvMsg returns an error (io.EOF included) or the
//     caller's context ends, whichever comes first.
//
// grpc-go's rules still hold for the caller: at most one goroutine in
// SendMsg and one in RecvMsg at a time, CloseSend not concurrent with
// SendMsg, and a message not modified after SendMsg.

type stream struct {
	c      *Client
	ctx    context.Context // the caller's, with the call's span
	desc   *grpc.StreamDesc
	method string
	opts   []grpc.CallOption
	tc     telemetry.Call

	maxMsgs, maxBytes int
	decided           chan struct{} // closed when the decision is made
	stop              func() bool   // stops watching the caller's context

	mu        sync.Mutex
	buf       []any // messages sent before commit, for replay
	bufBytes  int
	overflow  bool // some message that went out is not in buf: no replay
	closeSent bool
	cur       *streamAttempt // the attempt in flight while deciding
	deciding  bool
	won       *streamAttempt // set once committed
	served    chain.Served
	failed    error // why the stream ended before committing: RecvMsg returns it
	trailer   metadata.MD
	ended     bool // the call's outcome is reported

	// Written and read only by the goroutine running the decision.
	first    any  // where the first RecvMsg decodes
	firstEOF bool // the winner ended (OK) before any message
}

// streamAttempt is one attempt's stream.
type streamAttempt struct {
	cs     grpc.ClientStream
	cancel context.CancelFunc
	tier   int
	name   string    // the endpoint's
	ep     *endpoint // the endpoint's conn and state
	live   bool      // replay caught up: the caller's sends go straight to cs
}

type decideMode uint8

const (
	modeRecv   decideMode = iota // the first RecvMsg: success is the first message
	modeHeader                   // Header: success is the headers
	modeSend                     // the buffer overflowed: success is having sent it
)

func (c *Client) newStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts []grpc.CallOption) (grpc.ClientStream, error) {
	ctx, tc := c.startCall(ctx, method)
	s := &stream{c: c, ctx: ctx, desc: desc, method: method, opts: opts, tc: tc,
		maxMsgs: c.replayMsgs, maxBytes: c.replayBytes, decided: make(chan struct{})}
	if !desc.ClientStreams {
		s.maxMsgs, s.maxBytes = 1, -1 // the one request is always kept
	}
	// The caller must read the stream to its end or cancel its context
	// (grpc-go's rule); cancelling releases whatever the stream holds.
	s.stop = context.AfterFunc(ctx, func() {
		s.finish(sturdy.Outcome{Class: sturdy.Canceled, Err: ctx.Err()}, ctx.Err())
	})
	return s, nil
}

// Context returns the winning attempt's stream context once committed,
// the caller's before.
func (s *stream) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.won != nil {
		return s.won.cs.Context()
	}
	return s.ctx
}

// keep adds m to the replay buffer if the limits allow, and otherwise
// marks the buffer overflowed. s.mu must be held.
func (s *stream) keep(m any) bool {
	if s.overflow {
		return false
	}
	size := 0
	if s.maxBytes >= 0 {
		if pm, ok := m.(proto.Message); ok {
			size = proto.Size(pm)
		}
	}
	if s.maxMsgs < 0 || len(s.buf) >= s.maxMsgs || (s.maxBytes >= 0 && s.bufBytes+size > s.maxBytes) {
		s.overflow = true
		return false
	}
	s.buf = append(s.buf, m)
	s.bufBytes += size
	return true
}

// SendMsg records m for replay and sends it to the attempt in flight once
// that has caught up; after the commit it sends m on the winner's stream.
func (s *stream) SendMsg(m any) error {
	s.mu.Lock()
	if s.failed != nil || s.ended {
		s.mu.Unlock()
		return io.EOF // as grpc-go: the status is RecvMsg's to tell
	}
	if w := s.won; w != nil {
		s.mu.Unlock()
		return s.send(w, m)
	}
	kept := s.keep(m)
	switch {
	case !s.deciding:
		if kept {
			s.mu.Unlock()
			return nil // the decision's attempts replay it
		}
		// m cannot be kept for a replay and nothing is in flight: commit
		// to one endpoint now, without failover, sending everything there.
		s.buf = append(s.buf, m)
		s.deciding = true
		s.mu.Unlock()
		if err := s.decide(modeSend); err != nil {
			return io.EOF
		}
		return nil
	case s.cur != nil && s.cur.live:
		cur := s.cur
		s.mu.Unlock()
		// A failure here is the attempt's: the caller learns of it from
		// RecvMsg, after a failover if one is possible.
		r, err := s.c.rewriteMsg(cur.tier, s.method, m)
		if err != nil {
			return err
		}
		_ = cur.cs.SendMsg(r)
		return nil
	default:
		// Replaying (the replay will send m) or between attempts (the
		// next one refuses to start without m, if m was not kept).
		if !kept {
			s.buf = append(s.buf, m)
		}
		s.mu.Unlock()
		return nil
	}
}

func (s *stream) send(at *streamAttempt, m any) error {
	r, err := s.c.rewriteMsg(at.tier, s.method, m)
	if err != nil {
		return err
	}
	return at.cs.SendMsg(r)
}

// CloseSend records the half-close, or passes it on once an attempt is
// live.
func (s *stream) CloseSend() error {
	s.mu.Lock()
	if s.closeSent {
		s.mu.Unlock()
		return nil
	}
	s.closeSent = true
	// live is written under s.mu too: either this sees the attempt live
	// and half-closes it, or the attempt, going live, sees closeSent.
	w, cur := s.won, s.cur
	live := cur != nil && cur.live
	s.mu.Unlock()
	switch {
	case w != nil:
		return w.cs.CloseSend()
	case live:
		_ = cur.cs.CloseSend()
	}
	return nil
}

// commit returns the winner, running the decision with mode unless it is
// made or being made (then it waits for it). ran says this goroutine ran
// it.
func (s *stream) commit(mode decideMode, first any) (w *streamAttempt, ran bool, err error) {
	s.mu.Lock()
	switch {
	case s.won != nil:
		w = s.won
		s.mu.Unlock()
		return w, false, nil
	case s.failed != nil:
		err = s.failed
		s.mu.Unlock()
		return nil, false, err
	case s.deciding:
		s.mu.Unlock()
		<-s.decided
		s.mu.Lock()
		w, err = s.won, s.failed
		s.mu.Unlock()
		return w, false, err
	}
	s.deciding = true
	s.mu.Unlock()
	s.first = first
	err = s.decide(mode)
	s.first = nil
	if err != nil {
		return nil, true, err
	}
	s.mu.Lock()
	w = s.won
	s.mu.Unlock()
	return w, true, nil
}

// Header returns the winner's header metadata, deciding first if needed.
func (s *stream) Header() (metadata.MD, error) {
	w, _, err := s.commit(modeHeader, nil)
	if err != nil {
		return nil, err
	}
	return w.cs.Header()
}

// Trailer returns the winner's trailer metadata, or the deciding
// attempt's when the stream failed before committing.
func (s *stream) Trailer() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.won != nil {
		return s.won.cs.Trailer()
	}
	return s.trailer
}

// RecvMsg receives the next message; the first one decides the endpoint.
func (s *stream) RecvMsg(m any) error {
	w, ran, err := s.commit(modeRecv, m)
	if err != nil {
		return err
	}
	if ran {
		if s.firstEOF {
			s.end(w, io.EOF)
			return io.EOF
		}
		return nil
	}
	err = w.cs.RecvMsg(m)
	if err != nil {
		s.end(w, err)
	}
	return err
}

// end finishes the stream whose winner w's RecvMsg returned err (io.EOF
// for a clean end): its trailer is there to read now. A clean end reads it
// only for what it may carry: a load report (WithLoadReports), which the
// balancer learns as unary calls' reports, and rate-limit fields.
func (s *stream) end(w *streamAttempt, err error) {
	var trailer metadata.MD
	clean := errors.Is(err, io.EOF)
	if !clean || s.c.loads || s.c.wantTrailer(w.ep) {
		trailer = w.cs.Trailer()
	}
	out := sturdy.Outcome{}
	if !clean {
		out = s.c.cls.Outcome(err, nil, trailer)
	}
	if s.c.loads {
		out.Load = grpcload.Report(trailer)
	}
	s.c.listen(w.name, w.ep, nil, trailer, readTrailer)
	s.finish(out, err)
}

// decide runs the call through the stream chain until an attempt reaches
// the point mode names. s.deciding is set.
func (s *stream) decide(mode decideMode) error {
	call := chain.Call[*streamAttempt]{NoHedge: true,
		Fn: func(ctx context.Context, a attempt.Info) (*streamAttempt, sturdy.Outcome) {
			return s.attempt(ctx, a, mode)
		},
		Cleanup: func(at *streamAttempt) {
			if at != nil {
				at.cancel()
			}
		},
		Once: mode == modeSend,
	}
	var first any
	s.mu.Lock()
	sent := len(s.buf) > 0
	if sent {
		first = s.buf[0]
	}
	s.mu.Unlock()
	if s.c.estimate != nil && sent {
		call.Tokens = s.c.estimate(s.method, first)
	}
	ctx := s.ctx
	if s.c.keys != nil {
		ctx = s.c.keys.withKey(ctx, s.method, first)
	}
	var served chain.Served
	w, err := chain.Run(ctx, s.c.chain, &call, &served)
	s.mu.Lock()
	s.deciding, s.cur, s.buf = false, nil, nil
	if err != nil {
		err = statusError(s.ctx, err)
		s.failed, s.ended = err, true
		if w != nil {
			s.trailer = w.cs.Trailer()
		}
		s.mu.Unlock()
		close(s.decided)
		s.stop()
		if w != nil {
			w.cancel()
		}
		s.c.recordFailed(s.tc, err)
		s.tc.End()
		return err
	}
	s.won, s.served = w, served
	s.mu.Unlock()
	s.c.recordFirstByte(s.tc, &served)
	close(s.decided)
	if s.ctx.Err() != nil {
		// The caller gave up while the decision ran.
		s.finish(sturdy.Outcome{Class: sturdy.Canceled, Err: s.ctx.Err()}, s.ctx.Err())
	}
	return nil
}

// attempt opens a stream on a.Endpoint, replays what the caller sent and
// waits for the point mode names.
func (s *stream) attempt(ctx context.Context, a attempt.Info, mode decideMode) (*streamAttempt, sturdy.Outcome) {
	s.mu.Lock()
	noReplay := s.overflow && mode != modeSend
	s.mu.Unlock()
	if noReplay {
		return nil, sturdy.Outcome{Class: sturdy.Fatal, Err: errNoReplay}
	}
	ep := s.c.tiers[a.Tier].endpoint(a.Endpoint)
	sp := attemptSpan(ctx, ep, s.method)
	actx, cancel := context.WithCancel(ep.outgoing(ctx))
	cs, err := ep.cc.NewStream(actx, s.desc, s.method, s.opts...)
	if err != nil {
		endAttemptSpan(sp, err)
		cancel()
		return nil, s.c.cls.Outcome(err, nil, nil)
	}
	at := &streamAttempt{cs: cs, cancel: cancel, tier: a.Tier, name: a.Endpoint.Name, ep: ep}
	fail := func(out sturdy.Outcome) (*streamAttempt, sturdy.Outcome) {
		endAttemptSpan(sp, out.Err)
		s.mu.Lock()
		if s.cur == at {
			s.cur = nil
		}
		s.mu.Unlock()
		return at, out
	}
	// Replay what the caller sent, then go live: from then on the
	// caller's SendMsg sends to cs itself.
	ended := false // cs ended while replaying; RecvMsg tells why
	s.mu.Lock()
	s.cur = at
	for i := 0; i < len(s.buf) && !ended; i++ {
		m := s.buf[i]
		s.mu.Unlock()
		r, err := s.c.rewriteMsg(a.Tier, s.method, m)
		if err != nil {
			return fail(sturdy.Outcome{Class: sturdy.Fatal, Err: err})
		}
		ended = cs.SendMsg(r) != nil
		s.mu.Lock()
	}
	at.live = true
	closeSend := s.closeSent
	s.mu.Unlock()
	if closeSend && !ended {
		_ = cs.CloseSend()
	}
	switch mode {
	case modeSend:
		return at, sturdy.Outcome{}
	case modeHeader:
		md, err := cs.Header()
		if err == nil && md == nil {
			// grpc-go's Header says nothing of a stream that ended
			// without headers (trailers only); RecvMsg tells how it
			// ended, and decodes nothing, since no message can follow.
			if err = cs.RecvMsg(new(emptypb.Empty)); errors.Is(err, io.EOF) {
				err = nil
			}
		}
		if err != nil {
			return fail(s.attemptFailed(at, err))
		}
		s.c.listen(at.name, ep, md, nil, readHeader)
		return at, sturdy.Outcome{}
	}
	switch err := cs.RecvMsg(s.first); {
	case err == nil:
		s.listenHeader(at)
		return at, sturdy.Outcome{}
	case errors.Is(err, io.EOF):
		s.firstEOF = true
		s.listenHeader(at)
		return at, sturdy.Outcome{}
	default:
		return fail(s.attemptFailed(at, err))
	}
}

// attemptFailed classifies the error that ended attempt at before its first
// response, and listens to its trailer.
func (s *stream) attemptFailed(at *streamAttempt, err error) sturdy.Outcome {
	trailer := at.cs.Trailer()
	s.c.listen(at.name, at.ep, nil, trailer, readTrailer)
	return s.c.cls.Outcome(err, nil, trailer)
}

// listenHeader reads the response headers of at, which has received its
// first message (or its end), when the endpoint's gate asks: they are
// there, and reading them does not block.
func (s *stream) listenHeader(at *streamAttempt) {
	if !s.c.wantHeader(at.ep) {
		return
	}
	md, _ := at.cs.Header()
	s.c.listen(at.name, at.ep, md, nil, readHeader)
}

// finish ends the stream's call once: it reports the winner's outcome,
// releases its context and ends the call's telemetry. Before a decision
// (the caller's context ended first) it only ends the telemetry; during
// one it leaves the decision to end the call.
func (s *stream) finish(out sturdy.Outcome, err error) {
	s.mu.Lock()
	if s.ended || s.deciding {
		s.mu.Unlock()
		return
	}
	s.ended = true
	w := s.won
	if w == nil {
		s.failed = status.FromContextError(err).Err()
		s.mu.Unlock()
		s.c.tel.RecordCall(s.tc, -1, "", sturdy.Canceled, 0)
		s.tc.End()
		return
	}
	s.mu.Unlock()
	s.stop()
	switch {
	case out.Class != sturdy.Success:
		s.served.SetOutcome(out)
	case out.Load != nil:
		// The winner's outcome stands (its latency is the first
		// message's); the report at the end is the freshest.
		o := s.served.Outcome()
		o.Load = out.Load
		s.served.SetOutcome(o)
	}
	s.served.Release(-1)
	w.cancel()
	if !errors.Is(err, io.EOF) && err != nil {
		s.tc.Span().RecordError(err)
	}
	s.c.recordServed(s.tc, &s.served, out.Class)
	s.tc.End()
}

// rewrites reports whether requests to tier go through the ModelRewrite
// hook: every tier but the primary whose Model is set, as in httpmw.
func (c *Client) rewrites(tier int) bool {
	return c.rewrite != nil && tier > 0 && c.chain.Tier(tier).Model != ""
}

// rewriteMsg applies the ModelRewrite hook to a stream message for tier.
func (c *Client) rewriteMsg(tier int, method string, m any) (any, error) {
	if !c.rewrites(tier) {
		return m, nil
	}
	r, err := c.rewrite(degrade.Tier(c.chain.Tier(tier)), method, m)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "grpcmw: rewrite for tier %d: %v", tier, err)
	}
	return r, nil
}
