package grpcmw

import (
	"context"
	"reflect"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw/internal/grpcload"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/chain"
)

// wants are the caller's grpc.Header, grpc.Trailer and grpc.Peer call
// options. They are taken out of the options each attempt gets, since
// hedged attempts would write them concurrently; the winner's values are
// copied to them.
type wants struct {
	header, trailer *metadata.MD
	peer            *peer.Peer
}

func splitOpts(opts []grpc.CallOption) ([]grpc.CallOption, wants) {
	var w wants
	n := 0
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			w.header, n = o.HeaderAddr, n+1
		case grpc.TrailerCallOption:
			w.trailer, n = o.TrailerAddr, n+1
		case grpc.PeerCallOption:
			w.peer, n = o.PeerAddr, n+1
		}
	}
	if n == 0 {
		return opts[:len(opts):len(opts)], w
	}
	rest := make([]grpc.CallOption, 0, len(opts)-n)
	for _, o := range opts {
		switch o.(type) {
		case grpc.HeaderCallOption, grpc.TrailerCallOption, grpc.PeerCallOption:
		default:
			rest = append(rest, o)
		}
	}
	// Full capacity: each attempt's append copies, so that concurrent
	// hedges never write into one backing array.
	return rest[:len(rest):len(rest)], w
}

// unaryAttempt is what one attempt received.
type unaryAttempt struct {
	reply   any
	header  metadata.MD
	trailer metadata.MD
	peer    peer.Peer
	opts    []grpc.CallOption
	// optsHeader says opts ask for the header.
	optsHeader bool
}

// options returns the attempt's call options: the caller's, with the
// attempt's own header (if header), trailer and peer destinations.
func (a *unaryAttempt) options(base []grpc.CallOption, w *wants, header bool) []grpc.CallOption {
	if a.opts != nil && a.optsHeader == header {
		return a.opts
	}
	// One allocation for the caller's options and the attempt's.
	n := len(base) + 1
	if header {
		n++
	}
	if w.peer != nil {
		n++
	}
	opts := make([]grpc.CallOption, len(base), n)
	copy(opts, base)
	opts = append(opts, grpc.Trailer(&a.trailer))
	if header {
		opts = append(opts, grpc.Header(&a.header))
	}
	if w.peer != nil {
		opts = append(opts, grpc.Peer(&a.peer))
	}
	a.opts, a.optsHeader = opts, header
	return opts
}

// unaryCall is one unary call through the chain.
type unaryCall struct {
	c      *Client
	method string
	req    any
	reply  any
	base   []grpc.CallOption
	w      wants
	seq    unaryAttempt // when attempts run one at a time, they share it

	mu        sync.Mutex
	rewritten []any // per tier, when a Rewrite is set
}

func (c *Client) invoke(ctx context.Context, method string, req, reply any, opts []grpc.CallOption) error {
	ctx, tc := c.startCall(ctx, method)
	defer tc.End()
	uc := &unaryCall{c: c, method: method, req: req, reply: reply}
	uc.base, uc.w = splitOpts(opts)
	call := chain.Call[*unaryAttempt]{Fn: uc.attempt}
	if c.estimate != nil {
		call.Tokens = c.estimate(method, req)
	}
	if c.keys != nil {
		ctx = c.keys.withKey(ctx, method, req)
	}
	var served chain.Served
	won, err := chain.Run(ctx, c.chain, &call, &served)
	if err != nil {
		err = statusError(ctx, err)
		if won != nil {
			uc.deliver(won, false)
		}
		c.recordFailed(tc, err)
		return err
	}
	uc.deliver(won, true)
	tokens := int64(-1)
	if c.usage != nil {
		tokens = c.usage(method, reply)
	}
	c.recordFirstByte(tc, &served)
	c.recordServed(tc, &served, sturdy.Success)
	served.Release(tokens)
	return nil
}

// deliver copies the deciding attempt's reply (on success) and metadata
// to the caller.
func (uc *unaryCall) deliver(a *unaryAttempt, ok bool) {
	if ok && a.reply != uc.reply {
		copyReply(uc.reply, a.reply)
	}
	if uc.w.header != nil {
		*uc.w.header = a.header
	}
	if uc.w.trailer != nil {
		*uc.w.trailer = a.trailer
	}
	if uc.w.peer != nil {
		*uc.w.peer = a.peer
	}
}

// attempt is the chain.Call function: one attempt on a.Endpoint.
func (uc *unaryCall) attempt(ctx context.Context, a attempt.Info) (*unaryAttempt, sturdy.Outcome) {
	c := uc.c
	tier := c.tiers[a.Tier]
	ep := tier.endpoint(a.Endpoint)
	req, err := uc.request(a.Tier)
	if err != nil {
		return nil, sturdy.Outcome{Class: sturdy.Fatal, Err: err}
	}
	var at *unaryAttempt
	if tier.hedged {
		// Attempts may run at once: each decodes into its own message and
		// writes its own metadata; only the winner's reaches the caller.
		at = &unaryAttempt{reply: newMessage(uc.reply)}
	} else {
		at = &uc.seq
		at.reply, at.header, at.trailer, at.peer = uc.reply, nil, nil, peer.Peer{}
	}
	header := uc.w.header != nil || c.wantHeader(ep)
	sp := attemptSpan(ctx, ep, uc.method)
	err = ep.cc.Invoke(ep.outgoing(ctx), uc.method, req, at.reply, at.options(uc.base, &uc.w, header)...)
	endAttemptSpan(sp, err)
	o := c.cls.Outcome(err, at.header, at.trailer)
	if c.loads {
		o.Load = grpcload.Report(at.trailer)
	}
	// The server's rate-limit metadata paces the endpoint before its
	// RESOURCE_EXHAUSTED, as httpmw's response headers do.
	read := readTrailer
	if header {
		read |= readHeader
	}
	c.listen(a.Endpoint.Name, ep, at.header, at.trailer, read)
	return at, o
}

// request returns the request for tier, rewritten once per call and tier.
func (uc *unaryCall) request(tier int) (any, error) {
	c := uc.c
	if !c.rewrites(tier) {
		return uc.req, nil
	}
	uc.mu.Lock()
	if uc.rewritten == nil {
		uc.rewritten = make([]any, len(c.tiers))
	}
	r := uc.rewritten[tier]
	uc.mu.Unlock()
	if r != nil {
		return r, nil
	}
	r, err := c.rewrite(degrade.Tier(c.chain.Tier(tier)), uc.method, uc.req)
	if err != nil {
		return nil, err
	}
	uc.mu.Lock()
	if prev := uc.rewritten[tier]; prev != nil {
		r = prev // a concurrent hedge got there first
	} else {
		uc.rewritten[tier] = r
	}
	uc.mu.Unlock()
	return r, nil
}

// newMessage returns a new, empty message of reply's type.
func newMessage(reply any) any {
	if m, ok := reply.(proto.Message); ok {
		return m.ProtoReflect().New().Interface()
	}
	if t := reflect.TypeOf(reply); t != nil && t.Kind() == reflect.Pointer {
		return reflect.New(t.Elem()).Interface()
	}
	return reply
}

// copyReply makes dst what src is.
func copyReply(dst, src any) {
	if d, ok := dst.(proto.Message); ok {
		if s, ok := src.(proto.Message); ok {
			proto.Reset(d)
			proto.Merge(d, s)
			return
		}
	}
	dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
	if dv.Kind() == reflect.Pointer && sv.Type() == dv.Type() && !dv.IsNil() {
		dv.Elem().Set(sv.Elem())
	}
}
