package chain

import (
	"context"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Learned capacity per endpoint. A tier's admission (allow, wait) applies
// the limits a user configured, per tier. Each endpoint is also paced at
// the rate the ratelimit package learns for it from its answers: 429s and
// RESOURCE_EXHAUSTED (Overloaded outcomes), successes, and the rate-limit
// headers of HTTP responses (Listen). The pacing happens where the
// endpoint is chosen: a tier's Picker is wrapped so that an endpoint
// whose learned rate refuses the attempt is passed over for another of
// the tier, and when every endpoint refuses, the pick fails with the
// limiter's refusal (Overloaded), so the call falls back to the next
// tier. A retry after a 429 is paced the same way, so one refusal does
// not make the call knock on every endpoint of an exhausted key.
//
// The endpoints' limiter is separate from the tiers' (its keys are
// endpoint names, which may equal tier names); with a shared Store, its
// keys are prefixed "endpoint/" there. Until some endpoint has been
// refused or told a rate, a pick costs one atomic load more.

// pacing is a chain's per-endpoint learning.
type pacing struct {
	l      *ratelimit.Limiter
	active atomic.Bool // some endpoint was refused or told a rate
	tokens atomic.Bool // some endpoint has a token limit, configured or told: calls keep a ledger

	// keys are the limiter keys of endpoints with a quota key, by
	// endpoint name (quota.go); nil: none.
	keys map[string]string

	// observers holds each endpoint's Limiter.Observer, by endpoint name:
	// an immutable map, replaced under mu when an endpoint is first
	// observed, so that an outcome costs a map read and no lock.
	observers atomic.Pointer[map[string]func(sturdy.Outcome)]
	mu        sync.Mutex
}

// newPacing returns the pacing of endpoints with limits, by limiter key,
// and keys (nil: every endpoint is its own key).
func newPacing(cfg ratelimit.Config, limits map[string]ratelimit.Limit, keys map[string]string, peers [][]string) (*pacing, error) {
	if cfg.Learn.Off && len(limits) == 0 {
		return nil, nil
	}
	// A configured limit is applied as is: its key never learns.
	ec := ratelimit.Config{Learn: cfg.Learn, MaxKeys: cfg.MaxKeys, Overrides: limits}
	if cfg.Store != nil {
		ec.Store = prefixed(cfg.Store, "endpoint/")
	}
	l, err := ratelimit.New(ec)
	if err != nil {
		return nil, err
	}
	p := &pacing{l: l, keys: keys}
	for _, names := range peers {
		set := make([]string, 0, len(names))
		for _, n := range names {
			if k := p.key(n); !slices.Contains(set, k) {
				set = append(set, k)
			}
		}
		if len(set) > 1 {
			l.MayShare(set...)
		}
	}
	if len(limits) > 0 {
		p.active.Store(true)
	}
	for _, lim := range limits {
		if lim.TokensPerMinute > 0 {
			p.tokens.Store(true)
		}
	}
	if _, ok := ec.Store.(ratelimit.LearnStore); ok {
		// Another replica may have learned already.
		p.active.Store(true)
	}
	return p, nil
}

// observe feeds an attempt's outcome on endpoint to its learned rate.
func (p *pacing) observe(endpoint string, o sturdy.Outcome) {
	switch o.Class {
	case sturdy.Overloaded:
		p.active.Store(true)
	case sturdy.Success:
	default:
		return
	}
	if m := p.observers.Load(); m != nil {
		if f := (*m)[endpoint]; f != nil {
			f(o)
			return
		}
	}
	p.observer(endpoint)(o)
}

// observer returns endpoint's Limiter.Observer, adding it to observers.
func (p *pacing) observer(endpoint string) func(sturdy.Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var old map[string]func(sturdy.Outcome)
	if m := p.observers.Load(); m != nil {
		old = *m
	}
	if f := old[endpoint]; f != nil {
		return f
	}
	next := make(map[string]func(sturdy.Outcome), len(old)+1)
	for k, f := range old {
		next[k] = f
	}
	f := p.l.Observer(p.key(endpoint))
	next[endpoint] = f
	p.observers.Store(&next)
	return f
}

// listen feeds a response's rate-limit headers to endpoint's learned rate
// and reports whether it had any.
func (p *pacing) listen(endpoint string, h http.Header) bool {
	// A response without rate-limit headers costs the header scan alone:
	// no clock read, no learner lookup.
	k := p.key(endpoint)
	said := p.l.ListenHeaders(k, h)
	if said {
		p.heard(k)
	}
	return said
}

// picker is a tier's Picker with its endpoints paced.
type picker struct {
	next sturdy.Picker
	p    *pacing
	op   string // the chain's error prefix
}

var _ sturdy.Picker = (*picker)(nil)

// Pick picks as the tier's Picker does, passing over endpoints whose
// learned rate refuses an attempt now.
func (pk *picker) Pick(ctx context.Context, exclude []string) (*sturdy.Endpoint, func(sturdy.Outcome), error) {
	ep, done, err := pk.next.Pick(ctx, exclude)
	if err != nil || ep == nil || !pk.p.active.Load() {
		return ep, done, err
	}
	var excl []string
	var led *ledger
	if pk.p.tokens.Load() {
		led = ledgerOf(ctx)
	}
	for {
		var est int64
		if led != nil {
			est = led.est
		}
		permit, lerr := pk.p.l.Allow(ctx, pk.p.key(ep.Name), est)
		if lerr == nil {
			if led != nil {
				led.add(ep.Name, permit)
			}
			return ep, done, nil
		}
		done(sturdy.Outcome{Class: sturdy.Canceled}) // not sent: nothing to learn
		if excl == nil {
			excl = append(exclude[:len(exclude):len(exclude)], ep.Name)
		} else {
			excl = append(excl, ep.Name)
		}
		if ep, done, err = pk.next.Pick(ctx, excl); err != nil {
			// Every endpoint is paced: nothing went out, and the call
			// may fall back (a *sturdy.Error with no attempts says so).
			e := &sturdy.Error{Op: pk.op, Class: sturdy.Overloaded, Err: lerr}
			if le, ok := lerr.(*ratelimit.LimitedError); ok {
				e.RetryAfter = le.RetryAfter
			}
			return nil, nil, e
		}
	}
}

// Len is the tier Picker's Len, which the attempt loop reads to know when
// every endpoint has been tried; without one, no count is ever reached.
func (pk *picker) Len() int {
	if l, ok := pk.next.(interface{ Len() int }); ok {
		return l.Len()
	}
	return math.MaxInt
}

// learningHooks returns hooks that feed every attempt's outcome to p and
// then call inner's, read at call time (the pipeline fills them after
// New).
func learningHooks(p *pacing, inner *attempt.Hooks) *attempt.Hooks {
	return &attempt.Hooks{
		Start: func(ctx context.Context, a attempt.Info) context.Context {
			if inner != nil && inner.Start != nil {
				return inner.Start(ctx, a)
			}
			return ctx
		},
		End: func(ctx context.Context, a attempt.Info, o sturdy.Outcome, won bool) {
			if a.Endpoint != nil {
				p.observe(a.Endpoint.Name, o)
				if p.tokens.Load() && !won {
					if led := ledgerOf(ctx); led != nil {
						led.settle(a.Endpoint.Name, 0) // refunded: the attempt served nothing
					}
				}
			}
			if inner != nil && inner.End != nil {
				inner.End(ctx, a, o, won)
			}
		},
	}
}

// Listen learns from the rate-limit headers of a response from endpoint
// (OpenAI/Azure x-ratelimit-*, Anthropic anthropic-ratelimit-*, the IETF
// RateLimit fields): its pacing follows what the server says is left. It
// reports whether h carried any. A response without such headers costs a
// pass over its header map and no allocation; an adapter that reads only
// some (Sampled) saves even that.
func (c *Chain) Listen(endpoint string, h http.Header) bool {
	return c.pacing != nil && c.pacing.listen(endpoint, h)
}

// LearnedRate returns the rate endpoint is paced at, in requests per
// second; zero means it is not paced.
func (c *Chain) LearnedRate(endpoint string) float64 {
	if c.pacing == nil {
		return 0
	}
	return c.pacing.l.LearnedRate(c.pacing.key(endpoint))
}

// prefixStore keeps another Store's keys under a prefix.
type prefixStore struct {
	s      ratelimit.Store
	prefix string
}

// prefixLearnStore is a prefixStore over a LearnStore.
type prefixLearnStore struct {
	prefixStore
	ls ratelimit.LearnStore
}

func prefixed(s ratelimit.Store, prefix string) ratelimit.Store {
	ps := prefixStore{s: s, prefix: prefix}
	if ls, ok := s.(ratelimit.LearnStore); ok {
		return &prefixLearnStore{ps, ls}
	}
	return &ps
}

func (p *prefixStore) Take(ctx context.Context, key string, lim ratelimit.Limit, tokens int64, now time.Time, maxWait time.Duration) (ratelimit.Decision, error) {
	return p.s.Take(ctx, p.prefix+key, lim, tokens, now, maxWait)
}

func (p *prefixStore) Adjust(ctx context.Context, key string, lim ratelimit.Limit, requests, tokens int64, now time.Time) error {
	return p.s.Adjust(ctx, p.prefix+key, lim, requests, tokens, now)
}

func (p *prefixStore) SetCooldown(ctx context.Context, key string, until time.Time) error {
	return p.s.SetCooldown(ctx, p.prefix+key, until)
}

func (p *prefixLearnStore) Learned(ctx context.Context, key string) (ratelimit.Learned, error) {
	return p.ls.Learned(ctx, p.prefix+key)
}

func (p *prefixLearnStore) Learn(ctx context.Context, key string, st ratelimit.Learned, at int64) (ratelimit.Learned, error) {
	return p.ls.Learn(ctx, p.prefix+key, st, at)
}

// ledger holds, for a call on a chain whose endpoints have token limits,
// the permits its attempts took on their endpoints: a failed attempt's
// tokens are refunded when it ends, the winner's corrected to the call's
// real usage when it is released.
type ledger struct {
	est     int64 // the call's estimated tokens, charged at each pick
	mu      sync.Mutex
	permits []endpointPermit
}

type endpointPermit struct {
	name   string
	permit ratelimit.Permit
}

type ledgerKey struct{}

func ledgerOf(ctx context.Context) *ledger {
	l, _ := ctx.Value(ledgerKey{}).(*ledger)
	return l
}

func (l *ledger) add(name string, p ratelimit.Permit) {
	l.mu.Lock()
	l.permits = append(l.permits, endpointPermit{name, p})
	l.mu.Unlock()
}

// settle ends the permits of endpoint name (all of them when name is
// empty) with tokens spent.
func (l *ledger) settle(name string, tokens int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.permits[:0]
	for _, ep := range l.permits {
		if name == "" || ep.name == name {
			ep.permit.Done(tokens)
			continue
		}
		kept = append(kept, ep)
	}
	l.permits = kept
}
