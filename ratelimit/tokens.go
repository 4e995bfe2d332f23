package ratelimit

import (
	"math"
	"sync/atomic"
	"time"
)

// Token rates a server reports. A token quota that says how much is left
// and when it is full again (OpenAI's x-ratelimit-*-tokens, Anthropic's
// anthropic-ratelimit-tokens-*) gives the rate the server refills it at,
// as a request quota does (toldRate): a server that allows 10,000 tokens a
// minute and has 9,000 left, full again in 6 s, refills at 10,000 a
// minute. Listen makes that rate, less toldMargin, the key's token limit
// for toldFor, unless the key has a configured TokensPerMinute, so that
// each admission charges the call's token estimate against it: calls of
// about 1,000 tokens then go one every 6 s or so rather than all at once
// until the server refuses. The bucket holds 100 ms of the rate (a call
// larger than that is admitted when the bucket is full and leaves it in
// debt: see Limit.TokenBurst), the burst a server is taken to have
// (serverBurst); learned request rates keep half that (learnedBurst).
//
// What a server tells about tokens stays in this process: it is not
// written to a LearnStore, unlike the request rate.

// toldTokens is the token rate a server last reported for a key.
type toldTokens struct {
	perMinute atomic.Int64 // with toldMargin applied; 0: none
	until     atomic.Int64 // Unix nanoseconds
}

// listenTokens applies the token quota of sig, as read at now, to key.
func (l *Limiter) listenTokens(key string, sig Signal, now time.Time) {
	if l.learnOff {
		return
	}
	r, ok := toldRate(sig.Tokens)
	if !ok {
		return
	}
	if lim, err := l.limitOf(key); err != nil || lim.TokensPerMinute > 0 {
		return
	}
	v, ok := l.toldTokens.Load(key)
	if !ok {
		v, _ = l.toldTokens.LoadOrStore(key, new(toldTokens))
	}
	t := v.(*toldTokens)
	// Quantized, as learned request rates are, so that a shared Store
	// sees a bounded set of limits.
	t.perMinute.Store(max(1, int64(quantize(toldMargin*r*60))))
	t.until.Store(now.Add(toldFor).UnixNano())
	l.toldAny.Store(true)
}

// withToldTokens returns lim with key's told token rate when lim has no
// token rate of its own and a told one is in force at now (Unix ns).
func (l *Limiter) withToldTokens(key string, lim Limit, now int64) Limit {
	if lim.TokensPerMinute > 0 || !l.toldAny.Load() {
		return lim
	}
	v, ok := l.toldTokens.Load(key)
	if !ok {
		return lim
	}
	t := v.(*toldTokens)
	if now >= t.until.Load() {
		return lim
	}
	tpm := t.perMinute.Load()
	lim.TokensPerMinute, lim.TokenBurst = tpm, tokenBurst(tpm)
	return lim
}

// tokenBurst is 100 ms (serverBurst) of a token rate of tpm per minute, at
// least one.
func tokenBurst(tpm int64) int64 { return max(1, int64(math.Ceil(float64(tpm)/600))) }

// ToldTokensPerMinute returns the token rate key is paced at because its
// server reported it (Listen), in tokens per minute; zero means none is in
// force (none told, learning off, a configured TokensPerMinute, or more
// than a minute since it was last told).
func (l *Limiter) ToldTokensPerMinute(key string) int64 {
	return l.withToldTokens(key, Limit{}, time.Now().UnixNano()).TokensPerMinute
}
