package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
)

// Limiter admits calls per key: a requests-per-second bucket, a
// tokens-per-minute bucket and a server-driven cooldown, all per key. A key
// is whatever the caller chooses to limit: an endpoint, a model, a tenant,
// or a combination ("openai/gpt-4o").
//
// Allow admits or refuses at once; Wait may wait for admission, but never
// past its maxWait nor its context's deadline: when the wait needed is
// longer it refuses at once and charges nothing, like rate.Limiter.Wait.
// An admission returns a Permit; call its Done with the tokens the call
// really used (the estimate is corrected either way), or its Cancel if the
// call never went out. Observe feeds outcomes back, so a server's 429 with
// Retry-After pauses the key. Do wraps all of it around one call.
//
// Refusals are *LimitedError values matching ErrLimited and
// sturdy.ErrOverloaded. A Limiter is safe for concurrent use.
type Limiter struct {
	def       Limit
	overrides map[string]Limit
	limitFunc func(string) (Limit, bool)
	store     Store
	mem       *memStore // the store when it is the in-process one: no interface calls, no contexts

	learnOff bool
	curve    curve
	learners sync.Map   // key → *learner, for keys with no configured request rate
	shared   LearnStore // the store, when it shares what is learned
	// groups maps a key found to share a server's limit with others to
	// the key their group is paced and learned under (learned.go, group);
	// grouped says some key is in a group.
	groups  sync.Map // key → string
	grouped atomic.Bool
	groupMu sync.Mutex // serializes forming groups
	// peers maps a key that MayShare named to its set: only keys of one
	// set are grouped.
	peers    sync.Map // key → int
	peerSets atomic.Int64

	toldTokens sync.Map    // key → *toldTokens: token rates servers reported (tokens.go)
	toldAny    atomic.Bool // some key was told a token rate
}

// New returns a Limiter configured by cfg. It fails only for values that
// cannot work, such as negative rates.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Limiter{def: cfg.Default.normalized(), limitFunc: cfg.LimitFunc, store: cfg.Store,
		learnOff: cfg.Learn.Off, curve: cfg.Learn.curve()}
	l.shared, _ = cfg.Store.(LearnStore)
	if len(cfg.Overrides) > 0 {
		l.overrides = make(map[string]Limit, len(cfg.Overrides))
		for k, v := range cfg.Overrides {
			l.overrides[k] = v.normalized()
		}
	}
	if l.store == nil {
		l.mem = newMemStore(cfg.MaxKeys)
		l.store = l.mem
	}
	return l, nil
}

// limitOf returns key's normalized limit.
func (l *Limiter) limitOf(key string) (Limit, error) {
	if l.overrides != nil {
		if lim, ok := l.overrides[key]; ok {
			return lim, nil
		}
	}
	if l.limitFunc != nil {
		if lim, ok := l.limitFunc(key); ok {
			if lim.validate("") != nil { // name the key only on error: no allocation otherwise
				return Limit{}, lim.validate(fmt.Sprintf("LimitFunc(%q)", key))
			}
			return lim.normalized(), nil
		}
	}
	return l.def, nil
}

// Permit is an admission. It is a small value; the zero Permit (returned
// with every error) is valid and its methods do nothing. Call Done or
// Cancel once; a copy of a Permit is the same admission.
type Permit struct {
	l      *Limiter
	e      *entry // the key's in-process state, if any: saves a lookup
	key    string
	tokens int64 // the estimate charged
}

// Key returns the key the Permit was granted for: the key asked for, or
// the key of its group if the Limiter found it shares a server's limit
// with others (see LearnConfig).
func (p Permit) Key() string { return p.key }

// Done reports the tokens the call really used, correcting the estimate
// charged at admission: fewer gives the difference back (more calls fit),
// more takes the difference (the bucket may go into debt, delaying later
// calls). A negative actualTokens means unknown: the estimate stands.
func (p Permit) Done(actualTokens int64) {
	if p.l == nil || actualTokens < 0 || actualTokens == p.tokens {
		return
	}
	p.l.adjust(p.key, p.e, 0, actualTokens-p.tokens)
}

// Cancel gives the admission back (the request and the estimated tokens)
// because the call never went out, as rate.Reservation.Cancel does.
func (p Permit) Cancel() {
	if p.l == nil {
		return
	}
	p.l.adjust(p.key, p.e, -1, -p.tokens)
}

func (l *Limiter) adjust(key string, e *entry, requests, tokens int64) {
	lim, err := l.limitOf(key)
	if err != nil {
		return
	}
	now := time.Now()
	lim = l.withToldTokens(key, lim, now.UnixNano())
	if l.mem != nil {
		l.mem.adjust(key, e, lim, requests, tokens, now)
		return
	}
	_ = l.store.Adjust(context.Background(), key, lim, requests, tokens, now)
}

// Allow admits one call to key estimated at estTokens tokens (≤ 0: none,
// e.g. when Done will report the real count) if it may go now, or refuses
// it with a *LimitedError and charges nothing. It never waits; ctx only
// bounds a shared Store's round trip.
func (l *Limiter) Allow(ctx context.Context, key string, estTokens int64) (Permit, error) {
	return l.take(ctx, key, estTokens, 0, time.Now())
}

// Wait admits one call to key estimated at estTokens tokens, waiting for
// the buckets to refill or a cooldown to end if it must. It refuses at once
// with a *LimitedError, charging nothing, when the wait needed is longer
// than maxWait or would run past ctx's deadline; maxWait ≤ 0 means only
// ctx bounds the wait. If ctx is done while waiting, Wait gives the
// admission back and returns ctx.Err().
func (l *Limiter) Wait(ctx context.Context, key string, estTokens int64, maxWait time.Duration) (Permit, error) {
	if err := ctx.Err(); err != nil {
		return Permit{}, err
	}
	now := time.Now()
	limit := maxWait
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	if deadline, ok := ctx.Deadline(); ok {
		limit = min(limit, deadline.Sub(now))
	}
	return l.take(ctx, key, estTokens, limit, now)
}

// take admits or refuses at now and, if admitted for later, waits; Allow
// passes maxWait 0, so it never waits.
func (l *Limiter) take(ctx context.Context, key string, est int64, maxWait time.Duration, now time.Time) (Permit, error) {
	est = max(est, 0)
	lim, err := l.limitOf(key)
	if err != nil {
		return Permit{}, err
	}
	bk := key // the key of the buckets and cooldown
	if lim.RequestsPerSecond == 0 && !l.learnOff {
		bk = l.groupOf(key)
		if r := l.learnedRate(ctx, bk, now); r > 0 {
			r = quantize(r)
			lim.RequestsPerSecond, lim.Burst = r, learnedBurst(r)
		}
	}
	lim = l.withToldTokens(bk, lim, now.UnixNano())
	var d Decision
	var e *entry
	if l.mem != nil {
		d, e = l.mem.take(bk, lim, est, now, maxWait)
	} else if d, err = l.store.Take(ctx, bk, lim, est, now, maxWait); err != nil {
		return Permit{}, fmt.Errorf("ratelimit: store: %w", err)
	}
	if !d.OK {
		return Permit{}, limited(key, d.Cause, d.Wait, now)
	}
	p := Permit{l: l, e: e, key: bk, tokens: est}
	if d.Wait <= 0 {
		return p, nil
	}
	t := time.NewTimer(d.Wait)
	defer t.Stop()
	select {
	case <-t.C:
		return p, nil
	case <-ctx.Done():
		p.Cancel()
		return Permit{}, ctx.Err()
	}
}

// Cooldown refuses key until until, as a server's Retry-After asks. It
// never shortens a cooldown already in force.
func (l *Limiter) Cooldown(key string, until time.Time) {
	key = l.groupOf(key)
	if l.mem != nil {
		l.mem.setCooldown(key, until, time.Now())
		return
	}
	_ = l.store.SetCooldown(context.Background(), key, until)
}

// Observe learns from the outcome of a call admitted for key: an
// Overloaded outcome with a RetryAfter pauses the key for that long, and,
// unless the key has a configured request rate or learning is off
// (Config.Learn), Overloaded outcomes and successes teach the key's
// learned rate (see LearnConfig). Outcomes of this package's own refusals
// (errors matching ErrLimited) are ignored, so that feeding every outcome
// back cannot make a refusal extend itself.
func (l *Limiter) Observe(key string, o sturdy.Outcome) {
	key = l.groupOf(key)
	switch o.Class {
	case sturdy.Success:
		if l.learns(key) {
			now := endOf(o)
			l.learnerOf(key, now).served(now, now-int64(o.Latency))
		}
	case sturdy.Overloaded:
		if errors.Is(o.Err, ErrLimited) {
			return
		}
		now := endOf(o)
		if o.RetryAfter > 0 {
			l.Cooldown(key, time.Unix(0, now).Add(o.RetryAfter))
		}
		if l.learns(key) {
			lr := l.learnerOf(key, now)
			if st, ok := lr.refused(now, now-int64(o.Latency), o.RetryAfter, l.curve, l.shared != nil); ok {
				l.group(key, lr, now)
				l.share(key, st, now)
			}
		}
	}
}

// Observer returns Observe bound to key: a func that learns from the
// outcomes of calls admitted for key as Observe(key, o) does, for callers
// that report many outcomes of one key. It saves what Observe costs a
// success beyond its count: finding the key's limit and its learned state.
func (l *Limiter) Observer(key string) func(sturdy.Outcome) {
	if l.limitFunc != nil || !l.learns(key) {
		// A LimitFunc may answer otherwise later: look it up each time.
		return func(o sturdy.Outcome) { l.Observe(key, o) }
	}
	var lr atomic.Pointer[learner] // made by the first success, as Observe makes it
	return func(o sturdy.Outcome) {
		if o.Class != sturdy.Success || l.grouped.Load() {
			// A key in a group learns under the group's key.
			l.Observe(key, o)
			return
		}
		now := endOf(o)
		p := lr.Load()
		if p == nil {
			p = l.learnerOf(key, now)
			lr.Store(p)
		}
		p.served(now, now-int64(o.Latency))
	}
}

// endOf is when o ended, in Unix nanoseconds.
func endOf(o sturdy.Outcome) int64 {
	if o.End.IsZero() {
		return time.Now().UnixNano()
	}
	return o.End.UnixNano()
}
