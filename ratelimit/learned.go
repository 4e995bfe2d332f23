package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of LearnConfig.
const (
	DefaultLearnBeta    = 0.97
	DefaultLearnRecover = 12 * time.Second
)

// LearnConfig configures learned capacity: a key with no configured
// request rate is paced at a rate learned from what its server says, its
// 429s (Overloaded outcomes) and successes (Observe) and the rate-limit
// headers of its responses (Listen). Every zero field means its documented
// default, so the zero LearnConfig learns.
//
// The learning is CUBIC's (RFC 9438) applied to a request rate instead of
// a congestion window, as the AWS SDKs' "adaptive" retry mode applies it
// to a client-side token bucket (botocore's ClientRateLimiter):
//
//   - Nothing is paced until the server first refuses the key: a key that
//     is never refused costs nothing and is never slowed.
//   - On a refusal the rate falls to Beta times an estimate of what the
//     server accepts (multiplicative decrease; the estimate is described
//     at learner.refused), and the server's Retry-After, if any, is
//     honoured as a cooldown first.
//   - After the cooldown the rate grows back along CUBIC's curve: quickly
//     at first, flat as it nears the rate of the last refusal (W_max,
//     reached Recover after the cooldown), then ever faster beyond it, so
//     that a server whose capacity grew is found again. The ramp after a
//     Retry-After is paced, not a burst. After a first refusal, when the
//     estimate is rough, the curve runs in one second instead (probing).
//   - Refusals that arrive during a cooldown belong to the same event
//     (requests sent before it) and do not decrease the rate again.
//   - Keys that Limiter.MayShare named together (sturdy's adapters name
//     the endpoints of each tier) whose first refusals come within 100 ms
//     of each other are taken to share one server's limit (endpoints
//     behind one provider key, which empty its bucket together) and are
//     learned and paced as one key from then on: one rate for their sum,
//     one bucket, one cooldown (see Limiter.group).
//
// Why CUBIC's curve and not plain AIMD or a gradient: a provider's limit
// is a token bucket whose every refusal costs a Retry-After of idleness,
// so what matters is to sit just under the limit for as long as possible
// and probe beyond it rarely. Linear additive increase crosses the limit
// at the same slope every time; CUBIC's curve is flat around the last
// refusal's rate and probes steeply only after a long quiet. The gradient
// limiters of Netflix's concurrency-limits (Gradient2) and Envoy's
// adaptive concurrency size a concurrency window from latency, but a rate
// limiter answers 429 at once and its latency does not rise before it
// refuses, so there is no gradient to follow. Decreases by a factor keep
// the Chiu–Jain property (AIMD) that clients sharing one limit converge
// towards equal shares.
type LearnConfig struct {
	// Off turns learning off: keys with no configured request rate are
	// then only paused by Retry-After cooldowns and never paced.
	Off bool
	// Beta is the multiplicative decrease: after a refusal the key's rate
	// falls to Beta times the estimated rate the server accepts. It must
	// be in (0, 1); zero means DefaultLearnBeta. (RFC 9438 uses 0.7 for
	// congestion windows, and botocore too; here the decrease starts from
	// the rate the server was seen to accept, not from the rate that was
	// refused, so a smaller cut is enough: 0.97 keeps the same 3% of slack
	// as a rate the server told (toldMargin). With 0.95, the rate spends
	// the Recover after each refusal 1–5% under the limit: the simulated
	// 2× storm of learned_sim_test.go served 0.904× of it on average over
	// 24 seeds instead of 0.928×, worst seed 0.892× instead of 0.915×.)
	Beta float64
	// Recover is how long after the cooldown the rate takes to grow back
	// to the rate of the last refusal (CUBIC's K). Longer means fewer
	// refusals, each a Retry-After of idleness, once the limit is found,
	// but a slower discovery of a limit that was raised. Zero means
	// DefaultLearnRecover.
	Recover time.Duration
}

func (c LearnConfig) validate() error {
	if b := c.Beta; math.IsNaN(b) || b < 0 || b >= 1 {
		return fmt.Errorf("ratelimit: Learn.Beta must be in (0, 1) (0 = %v), got %v", DefaultLearnBeta, b)
	}
	if c.Recover < 0 {
		return fmt.Errorf("ratelimit: Learn.Recover must be ≥ 0 (0 = %v), got %v", DefaultLearnRecover, c.Recover)
	}
	return nil
}

// curve is a LearnConfig's CUBIC curve: W(t) = Max·(1 + c·(t − k)³),
// with t in seconds since the cooldown ended; c makes W(0) = Beta·Max.
type curve struct {
	beta, k, c float64
}

func (c LearnConfig) curve() curve {
	b := c.Beta
	if b == 0 {
		b = DefaultLearnBeta
	}
	r := c.Recover
	if r == 0 {
		r = DefaultLearnRecover
	}
	k := r.Seconds()
	return curve{beta: b, k: k, c: (1 - b) / (k * k * k)}
}

// probeK is CUBIC's K, in seconds, after a first refusal (Learned.Probe).
const probeK = 1.0

// maxLearnedRate bounds the curve's growth: beyond it a key is unpaced in
// all but name.
const maxLearnedRate = 1e9

// Learned is what a Limiter has learned about one key's admissible
// request rate. LearnStore implementations keep and share it; its zero
// value has learned nothing and paces nothing.
type Learned struct {
	// Max is the rate, in requests per second, the server was estimated
	// to accept when it last refused the key (CUBIC's W_max). Zero means
	// the key was never refused.
	Max float64
	// Probe says Max is a rough guess (a first refusal with little to go
	// on, or a refusal right after a cooldown): the rate then grows back
	// to it within a second rather than Recover, and beyond it as fast,
	// to find the limit quickly.
	Probe bool
	// Since is when the rate starts growing back: the end of the cooldown
	// that followed that refusal, in Unix nanoseconds.
	Since int64
	// Told is the request rate the server last reported in its rate-limit
	// headers, a ceiling until ToldUntil (Unix nanoseconds). Zero: none.
	Told      float64
	ToldUntil int64
}

// Rate returns the learned rate at now (Unix nanoseconds) on cv's curve;
// zero means unpaced.
func (s Learned) rate(now int64, cv curve) float64 {
	r := 0.0
	if s.Max > 0 {
		t := max(float64(now-s.Since)/1e9, 0)
		k, c := cv.k, cv.c
		if s.Probe {
			k, c = probeK, (1-cv.beta)/(probeK*probeK*probeK)
		}
		x := t - k
		r = min(s.Max*(1+c*x*x*x), maxLearnedRate)
	}
	if s.Told > 0 && now < s.ToldUntil && (r == 0 || s.Told < r) {
		r = s.Told
	}
	return r
}

// Rate returns the rate the key is paced at, at now, with the default
// curve; zero means unpaced.
func (s Learned) Rate(now time.Time) float64 { return s.rate(now.UnixNano(), LearnConfig{}.curve()) }

// quantize rounds a learned rate to steps of about 0.7% (1/100 of an
// octave), so that a shared Store that caches per-limit values (the Redis
// store's script arguments) sees a bounded set of limits rather than a new
// one at every admission.
func quantize(r float64) float64 { return math.Exp2(math.Round(math.Log2(r)*100) / 100) }

// serverBurst is the burst a learner takes a server's bucket to have, in
// seconds of its rate: 100 ms, as the bursts of the rate-limit buckets
// providers document are short (OpenAI enforces a per-minute limit over
// shorter periods).
const serverBurst = 0.1

// learnedBurst is how many requests a learned rate lets go at once: 50 ms
// of it, half the burst a server is taken to have (serverBurst). When a
// cooldown ends, the server's bucket is full and so is the key's: with
// the same burst on both sides, the key's first burst (or those of several
// endpoints behind one provider key, whose cooldowns end together) spends
// the server's whole bucket, and the least jitter draws another 429 and
// another Retry-After of idleness. With half, the resume leaves slack
// (bench/sim: scenario 4's learned row back on the primary 100 ms after
// the storm instead of 2.1 s; scenario 8's x-ratelimit-headers row at one
// 429 per run instead of one to three). The price is a Poisson load close
// to the learned rate: at 100 req/s against 120, 2.9% of its calls are
// paced to the next tier instead of 0.3% with 100 ms.
func learnedBurst(r float64) int { return max(1, int(math.Ceil(r/20))) }

// recent counts a key's answers over the last second, in ten slices of
// 100 ms: successes and refusals.
//
// Its entries are atomics so that a success in a slice already begun is
// counted without the learner's lock (learner.served): only the first
// answer of a slice, which resets its entry, takes the lock. An answer
// counted without the lock while another resets its entry for a slice a
// second later lands in that later slice.
type recent struct {
	slot   [learnSlots]atomic.Int64 // the absolute slice each entry holds
	ok, no [learnSlots]atomic.Int64
}

const (
	learnSlots  = 10
	learnSlice  = int64(100 * time.Millisecond)
	learnWindow = learnSlots * learnSlice
)

// add counts an answer at now; the learner's lock must be held.
func (r *recent) add(now int64, ok bool) {
	s := now / learnSlice
	i := s % learnSlots
	if r.slot[i].Load() != s {
		// Counts first, then the slice: a lock-free adder (begun) that
		// sees the new slice sees its counts reset.
		r.ok[i].Store(0)
		r.no[i].Store(0)
		r.slot[i].Store(s)
	}
	r.count(i, ok)
}

func (r *recent) count(i int64, ok bool) {
	if ok {
		r.ok[i].Add(1)
	} else {
		r.no[i].Add(1)
	}
}

// begun returns now's entry if it already holds now's slice (an answer
// there needs no reset), or -1.
func (r *recent) begun(now int64) int64 { return begun(r.slot[:], now) }

// begun returns the entry of slots, entries of 100 ms slices, that holds
// t's slice, or -1 if t's entry holds another.
func begun(slots []atomic.Int64, t int64) int64 {
	s := t / learnSlice
	if i := s % int64(len(slots)); slots[i].Load() == s {
		return i
	}
	return -1
}

// sentLog counts a key's successes by when they were sent, in slices of
// 100 ms over the last sentSlots of them (25.6 s): a server's bucket
// charges a request when it arrives.
//
// Like recent's, its entries are atomics, reset under the learner's lock
// and counted without it in a slice already begun.
type sentLog struct {
	slot [sentSlots]atomic.Int64 // the absolute slice each entry holds
	ok   [sentSlots]atomic.Int32
}

const sentSlots = 256

// add counts a success sent at at; the learner's lock must be held.
func (r *sentLog) add(at int64) {
	s := at / learnSlice
	i := s % sentSlots
	if r.slot[i].Load() != s {
		r.ok[i].Store(0)
		r.slot[i].Store(s)
	}
	r.ok[i].Add(1)
}

// begun is recent.begun for a success sent at at.
func (r *sentLog) begun(at int64) int64 { return begun(r.slot[:], at) }

// holds reports whether a success sent at at, answered at now, still has
// its slice in the log.
func (r *sentLog) holds(at, now int64) bool { return at/learnSlice > now/learnSlice-sentSlots }

// acceptedBefore is a lower bound of a server's rate from the successes r
// counts by when they were sent, before at: a bucket of rate x and burst
// x·serverBurst accepts at most x·(τ + serverBurst) requests over a span τ,
// so x ≥ n/(τ + serverBurst) for the n accepted in any span τ that ends at
// at. The bound is the highest over the spans the log holds. When the
// server refused a request sent at at, its bucket was empty then, and the
// bound is the rate itself (up to a slice's worth of requests): over the
// span since the bucket was last full, it accepted its burst and its rate
// times the span, no more (a bucket that drained slowly, at a rate a
// little above its limit, was last full seconds before; hence a log of
// many seconds).
func (r *sentLog) acceptedBefore(at int64) float64 {
	last := at / learnSlice
	n, x := int64(0), 0.0
	for s := last; s > last-sentSlots; s-- {
		if i := s % sentSlots; r.slot[i].Load() == s {
			n += int64(r.ok[i].Load())
		}
		tau := float64(at-s*learnSlice) / 1e9
		x = max(x, float64(n)/(tau+serverBurst))
	}
	return x
}

// rates returns, over the last second at now (or since born, if later),
// the rate of successes, the highest rate of answers in one slice
// (requests per second) and the share of answers that were successes.
// The span is the time the counted slices cover, from the oldest one's
// start to now: counting the slice now is in as a whole 100 ms would
// understate the rate by up to a tenth just after a slice begins.
func (r *recent) rates(now, born int64) (ok, peak, okShare float64) {
	oldest := now/learnSlice - learnSlots + 1
	var n, seen int64
	for i := range r.slot {
		if s := r.slot[i].Load(); s >= oldest && s <= now/learnSlice {
			ok := r.ok[i].Load()
			sn := ok + r.no[i].Load()
			n += ok
			seen += sn
			peak = max(peak, float64(sn))
		}
	}
	span := max(now-max(born, oldest*learnSlice), learnSlice)
	return float64(n) / (float64(span) / 1e9), peak / (float64(learnSlice) / 1e9), float64(n) / float64(max(seen, 1))
}

// learner is one key's learning state in this process.
type learner struct {
	mu     sync.Mutex
	st     Learned
	born   int64 // when the learner was made
	recent recent
	// sent counts the successes by when they were sent (answer time less
	// latency), over the log's 25.6 s: a server's bucket charges a
	// request when it arrives.
	sent sentLog
	// first is when the request behind the last refusal was sent, while
	// the answers to those sent before it, which take a latency to come
	// back, may still raise the estimate (until its cooldown ends), to no
	// more than ceil if positive; zero otherwise.
	first int64
	ceil  float64
	// epochStart is when the last decrease's cooldown ended (or when the
	// learner was made): the successes since are counted in recent.
	epochStart int64
	// coolUntil is when the last decrease's cooldown ends: refusals before
	// it are the same event.
	coolUntil int64
	// raising mirrors coolUntil while first is set (zero otherwise): a
	// success answered before it may raise the estimate (served), so it
	// takes the lock.
	raising atomic.Int64
	// paced mirrors st.Max > 0 || st.Told > 0, for admission without the
	// lock while nothing is learned.
	paced atomic.Bool
	// synced is when st was last read from a LearnStore.
	synced atomic.Int64
	// firstAt is when the key was first refused (Unix nanoseconds); zero
	// before.
	firstAt atomic.Int64
}

func newLearner(now int64) *learner {
	return &learner{born: now, epochStart: now}
}

// served counts a success answered at now and sent at start. During the
// cooldown of a refusal whose estimate comes from acceptedBefore, a
// success sent before the refused request raises the estimate to what the
// successes sent before it show (acceptedBefore), to no more than the rate
// the key was paced at: when the server refused, the answers to the
// requests it had just accepted were still on their way, so the estimate
// made at the refusal sees too few of them.
//
// A success that changes nothing but the counts of slices already begun,
// the usual one, takes no lock: an atomic add for each of recent and sent.
func (lr *learner) served(now, start int64) {
	if now >= lr.raising.Load() {
		if i := lr.recent.begun(now); i >= 0 {
			if !lr.sent.holds(start, now) {
				lr.recent.count(i, true)
				return
			}
			if j := lr.sent.begun(start); j >= 0 {
				lr.recent.count(i, true)
				lr.sent.ok[j].Add(1)
				return
			}
		}
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.recent.add(now, true)
	if lr.sent.holds(start, now) {
		// An older send would take the slot of a newer slice.
		lr.sent.add(start)
	}
	if lr.first != 0 && start < lr.first && now < lr.coolUntil {
		lr.st.Max = max(lr.st.Max, lr.sent.acceptedBefore(lr.first))
		if lr.ceil > 0 {
			lr.st.Max = min(lr.st.Max, lr.ceil)
		}
	}
}

// refused applies a server's refusal at now, followed by a cooldown of
// retryAfter: a multiplicative decrease, unless the refusal belongs to a
// decrease already made. It returns the state and whether it changed.
//
// The decrease is from an estimate of the rate the server accepts:
//   - while a rate the server reported (headers) is in force, that rate;
//   - within 200 ms of the end of the last decrease's cooldown, if that
//     decrease was a rough guess (Probe) or the key is shared, half the
//     rate the key was paced at (the server's burst went at once: far
//     above its limit), found again as after a first refusal; otherwise
//     the rate the key was paced at: 200 ms at a rate this process
//     measured to be accepted cannot have emptied the server's refilled
//     bucket, so the refusal says more about other clients of the key
//     (other endpoints behind the same provider key, whose cooldowns end
//     together) than about this one's rate, and halving on it cascades
//     (bench/sim scenario 8, three replicas);
//   - otherwise the rate the successes sent before the refused request
//     show the server accepted (acceptedBefore over the log's 25.6 s):
//     the server's bucket was empty when it refused, so over the span
//     since it was last full it accepted its burst and its rate times the
//     span, and the bound is tight; the answers still on their way raise
//     it until the cooldown ends (served), to no more than the rate the
//     key was paced at. (The rate of successes over the last second, less
//     the burst spread over the time since the cooldown, read 2–5% high
//     after a fast rise, whose burst is spent within that second, and the
//     pacing then drew another refusal within seconds: bench/sim scenario
//     8, one replica.)
//   - for a key a LearnStore shares, the rate the fleet was paced at times
//     the share of this replica's answers in the last second that were
//     successes: its own successes are only its part of the fleet's;
//   - on a first refusal, the geometric mean of the rate of successes in
//     the last second (the server accepted at least that) and the highest
//     rate of answers in one 100 ms slice of it (it refused at that): the
//     middle, on a log scale, of what is known; or, if higher and the
//     key is not shared, the rate the successes sent before the refused
//     request show the server accepted (acceptedBefore), which the
//     answers still on their way raise until the cooldown ends (served);
//
// and never more than the rate the key was paced at. sent is when the
// refused request was sent.
func (lr *learner) refused(now, sent int64, retryAfter time.Duration, cv curve, shared bool) (Learned, bool) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.recent.add(now, false)
	if now < lr.coolUntil {
		return lr.st, false
	}
	cur := lr.st.rate(now, cv)
	ok, peak, okShare := lr.recent.rates(now, max(lr.born, lr.epochStart))
	est, probe, first := ok, false, int64(0)
	switch {
	case lr.st.Told > 0 && now < lr.st.ToldUntil:
		est = lr.st.Told
	case lr.st.Max > 0 && now-max(lr.born, lr.epochStart) < 2*learnSlice && (lr.st.Probe || shared):
		// Refused within 200 ms of pacing again at a guess (or at the
		// fleet's rate): far above the limit (the server's burst went at
		// once). Halve, and find it again.
		est, probe = cur/2, true
	case lr.st.Max > 0 && now-max(lr.born, lr.epochStart) < 2*learnSlice:
		est = cur // a plain multiplicative decrease
	case lr.st.Max > 0 && shared:
		est = cur * okShare * burstless(now-lr.epochStart)
	case lr.st.Max > 0:
		est, first = lr.sent.acceptedBefore(sent), sent
	case lr.st.Max == 0:
		lr.firstAt.Store(now)
		est, probe = math.Sqrt(max(ok, 1)*max(peak, ok, 1)), true
		if !shared {
			est, first = max(est, lr.sent.acceptedBefore(sent)), sent
		}
	}
	if cur > 0 {
		est = min(est, cur)
	}
	est = max(est, 1) // a key that served nothing lately still gets a request a second
	end := now + int64(max(retryAfter, 0))
	lr.st.Max, lr.st.Probe, lr.st.Since = est, probe, end
	lr.coolUntil, lr.epochStart = end, end
	lr.first, lr.ceil = first, cur
	lr.syncRaising()
	lr.paced.Store(true)
	return lr.st, true
}

// burstless discounts, from a rate of successes measured over an epoch of
// t nanoseconds that began with the server's bucket full (it refills
// during the cooldown), the server's burst (serverBurst): a refusal that
// comes t after pacing resumed at a rate r means r ≈ limit + burst/t, so
// the rate accepted overstates the limit by about that much (by 8% after
// 1.25 s, 1% after 10 s).
func burstless(t int64) float64 {
	return max(0.5, 1-serverBurst/max(float64(t)/1e9, serverBurst))
}

// told applies a rate the server reported, valid until until.
func (lr *learner) told(rate float64, until int64) Learned {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.st.Told, lr.st.ToldUntil = rate, until
	lr.paced.Store(true)
	return lr.st
}

// rate returns the key's learned rate at now; zero means unpaced.
func (lr *learner) rate(now int64, cv curve) float64 {
	if !lr.paced.Load() {
		return 0
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.st.rate(now, cv)
}

// adopt replaces the state with one read from a shared store.
func (lr *learner) adopt(st Learned) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if st.Since != lr.st.Since && st.Since > lr.coolUntil {
		// Another replica decreased: its cooldown is this one's guard,
		// and a new epoch of successes starts with it.
		lr.coolUntil, lr.epochStart = st.Since, st.Since
		lr.syncRaising()
	}
	lr.st = st
	lr.paced.Store(st.Max > 0 || st.Told > 0)
}

// toldRate reads a request rate from a quota a server reported: a token
// bucket of q.Limit requests that refills to full in q.Reset drains and
// refills at (Limit − Remaining)/Reset. That is what OpenAI's and
// Anthropic's headers describe (Anthropic documents a token bucket;
// OpenAI's reset is "the time until the rate limit resets to its initial
// state"). ok is false when the quota does not say.
func toldRate(q Quota) (float64, bool) {
	if !q.HasLimit || !q.HasRemaining || !q.HasReset || q.Reset <= 0 || q.Remaining >= q.Limit {
		return 0, false
	}
	return float64(q.Limit-q.Remaining) / q.Reset.Seconds(), true
}

// LearnStore is a Store that also keeps what Limiters learn about keys
// with no configured request rate, so that every replica of a client that
// shares the Store paces a key alike: a provider's quota belongs to its
// API key, not to one process. A Limiter whose Config.Store is a
// LearnStore reads a key's state from it at most every LearnSync, and
// writes every decrease and every rate a server reported.
//
// Errors are dropped, as Adjust's are: a Limiter goes on with what it has
// learned itself, and a store that can fail should fall back to a local
// copy and report its failures itself.
type LearnStore interface {
	Store
	// Learned returns key's shared learned state; the zero Learned if
	// none.
	Learned(ctx context.Context, key string) (Learned, error)
	// Learn records st as key's shared learned state and returns the
	// state in force. at is when the refusal behind st happened (Unix
	// nanoseconds), or zero when st only reports a server's told rate: a
	// decrease recorded by another replica whose cooldown (Since) ends
	// after at is the same event, and wins. Told and ToldUntil are kept
	// from whichever report lasts longer.
	Learn(ctx context.Context, key string, st Learned, at int64) (Learned, error)
}

// LearnSync is how often a Limiter rereads a key's learned state from a
// LearnStore.
const LearnSync = 200 * time.Millisecond

// toldMargin is the share of a server's told rate a key is paced at: a
// little below it, so that the server's bucket keeps some slack for the
// jitter between a request's sending and its arrival (pacing at exactly
// the server's rate leaves its bucket empty, and any early arrival is
// refused).
const toldMargin = 0.97

// toldFor is how long a rate a server reported stays a ceiling without
// being reported again.
const toldFor = time.Minute

// groupOf returns the key key is paced and learned under: its group's,
// if it is in one, else itself.
func (l *Limiter) groupOf(key string) string {
	if !l.grouped.Load() {
		return key
	}
	if g, ok := l.groups.Load(key); ok {
		return g.(string)
	}
	return key
}

// coincide is how close two keys' first refusals must be for group to
// take them to share one server's limit.
const coincide = learnSlice

// MayShare names keys that may share one server's limit although nothing
// configured them as one key: the endpoints of one tier, say, which may be
// deployments behind one provider key. Those of them whose first refusals
// coincide are then learned and paced as one key (see LearnConfig). Keys
// never named together are never grouped, so that a fallback tier's
// endpoints, refused in the same moment as the primary's because the
// primary's refusals sent them its load, are not paused with it. A key
// belongs to the set the last call named it in; call MayShare before the
// keys are refused. Keys with a configured request rate, and keys a
// LearnStore shares, are never grouped.
func (l *Limiter) MayShare(keys ...string) {
	set := l.peerSets.Add(1)
	for _, k := range keys {
		l.peers.Store(k, set)
	}
}

// peerSet returns the set MayShare last named key in, or 0.
func (l *Limiter) peerSet(key string) int64 {
	if v, ok := l.peers.Load(key); ok {
		return v.(int64)
	}
	return 0
}

// group puts key, just refused, in one group with other keys MayShare
// named with it whose first refusals coincided with its own (within
// coincide), when key's was its first: endpoints behind one provider key that nothing configured
// as such (a QuotaKey) run out together, when the bucket they share
// empties, while endpoints with limits of their own run out each at its
// own time. The group is then paced and learned as one key, as a
// configured quota key is: one learned rate for the sum, one bucket and
// one cooldown, so that neither grows into the capacity the others leave
// while they cool (which, learned separately, they do, and their rates
// add up to more than the limit when the others resume: bench/sim
// scenario 8, three replicas). Its first estimate is the sum of theirs.
// The cost, for endpoints with limits of their own that happen to run out
// together, is that a refusal of one pauses all of them. A LearnStore's
// keys are not grouped: what is shared is per key.
func (l *Limiter) group(key string, lr *learner, now int64) {
	set := l.peerSet(key)
	if l.shared != nil || set == 0 || lr.firstAt.Load() != now {
		return
	}
	lim, err := l.limitOf(key)
	if err != nil {
		return
	}
	l.groupMu.Lock()
	defer l.groupMu.Unlock()
	led := false // others joined key already: it leads a group
	l.groups.Range(func(_, g any) bool {
		led = g.(string) == key
		return !led
	})
	if led {
		return
	}
	lead := ""
	l.learners.Range(func(k, v any) bool {
		k2 := k.(string)
		if k2 == key || l.peerSet(k2) != set {
			return true
		}
		at := v.(*learner).firstAt.Load()
		if at == 0 || max(at-now, now-at) > int64(coincide) {
			return true
		}
		if lim2, err := l.limitOf(k2); err != nil || lim2 != lim {
			return true
		}
		lead = l.groupOf(k2)
		return false
	})
	if lead == "" || lead == key {
		return
	}
	l.learnerOf(lead, now).absorb(lr)
	l.groups.Store(key, lead)
	l.grouped.Store(true)
}

// absorb adds m's first estimate and what it counted to lr's: m's key
// joins lr's group.
func (lr *learner) absorb(m *learner) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	lr.st.Max += m.st.Max
	for i := range m.sent.slot {
		switch s, ls := m.sent.slot[i].Load(), lr.sent.slot[i].Load(); {
		case ls == s:
			lr.sent.ok[i].Add(m.sent.ok[i].Load())
		case ls < s:
			lr.sent.ok[i].Store(m.sent.ok[i].Load())
			lr.sent.slot[i].Store(s)
		}
	}
	for i := range m.recent.slot {
		switch s, ls := m.recent.slot[i].Load(), lr.recent.slot[i].Load(); {
		case ls == s:
			lr.recent.ok[i].Add(m.recent.ok[i].Load())
			lr.recent.no[i].Add(m.recent.no[i].Load())
		case ls < s:
			lr.recent.ok[i].Store(m.recent.ok[i].Load())
			lr.recent.no[i].Store(m.recent.no[i].Load())
			lr.recent.slot[i].Store(s)
		}
	}
	lr.coolUntil = max(lr.coolUntil, m.coolUntil)
	lr.syncRaising()
}

// syncRaising updates raising after first or coolUntil changed; lr.mu
// must be held.
func (lr *learner) syncRaising() {
	if lr.first != 0 {
		lr.raising.Store(lr.coolUntil)
	} else {
		lr.raising.Store(0)
	}
}

// learns reports whether key's rate is learned: learning is on and the key
// has no configured request rate.
func (l *Limiter) learns(key string) bool {
	if l.learnOff {
		return false
	}
	lim, err := l.limitOf(key)
	return err == nil && lim.RequestsPerSecond == 0
}

// learnerOf returns key's learner, making it if need be.
func (l *Limiter) learnerOf(key string, now int64) *learner {
	if v, ok := l.learners.Load(key); ok {
		return v.(*learner)
	}
	v, _ := l.learners.LoadOrStore(key, newLearner(now))
	return v.(*learner)
}

// learnedRate is key's learned rate at now (zero: unpaced), refreshed
// from a LearnStore when one is configured.
func (l *Limiter) learnedRate(ctx context.Context, key string, now time.Time) float64 {
	ns := now.UnixNano()
	if l.shared == nil {
		v, ok := l.learners.Load(key)
		if !ok {
			return 0
		}
		return v.(*learner).rate(ns, l.curve)
	}
	lr := l.learnerOf(key, ns)
	if last := lr.synced.Load(); ns-last >= int64(LearnSync) && lr.synced.CompareAndSwap(last, ns) {
		if st, err := l.shared.Learned(ctx, key); err == nil {
			lr.adopt(st)
		}
	}
	return lr.rate(ns, l.curve)
}

// share writes a key's new state to the LearnStore, if any, and adopts
// what is in force there.
func (l *Limiter) share(key string, st Learned, at int64) {
	if l.shared == nil {
		return
	}
	if got, err := l.shared.Learn(context.Background(), key, st, at); err == nil {
		l.learnerOf(key, at).adopt(got)
	}
}

// Listen learns from the rate-limit headers of a response for key, as
// ParseHeaders read them at now, unless the key has a configured request
// rate or learning is off. A request quota that says how much is left and
// when it is full again gives the rate the server refills it at, which
// becomes the key's ceiling for a minute (toldRate, less 3%); a request
// quota with less left than a small reserve (a quarter of it, or 50 ms of
// its rate if less) pauses the key until the reserve has refilled, and a token
// quota with nothing left pauses it until the quota resets. A token quota
// likewise gives the rate the server refills it at, which becomes the
// key's token limit for a minute unless it has a configured
// TokensPerMinute (see ToldTokensPerMinute). Retry-After is left to
// Observe, which sees it on the outcome.
func (l *Limiter) Listen(key string, sig Signal, now time.Time) {
	key = l.groupOf(key)
	l.listenTokens(key, sig, now)
	if !l.learns(key) {
		return
	}
	ns := now.UnixNano()
	q := sig.Requests
	if r, ok := toldRate(q); ok {
		st := l.learnerOf(key, ns).told(toldMargin*r, ns+int64(toldFor))
		l.share(key, st, 0)
		// Keep a reserve in the server's bucket for the jitter between
		// sending and arriving: a quarter of it, or 50 ms of its rate if
		// less. Below that, pause until it has refilled (at least one
		// request's worth): a few milliseconds against a refusal's whole
		// Retry-After.
		reserve := min(float64(q.Limit)/4, r*0.05)
		if short := reserve - float64(q.Remaining); short > 0 || q.Remaining == 0 {
			l.Cooldown(key, now.Add(time.Duration(max(short, 1)/r*float64(time.Second))))
		}
	}
	for _, t := range [...]Quota{sig.Tokens, sig.InputTokens, sig.OutputTokens} {
		if t.HasRemaining && t.Remaining == 0 && t.HasReset && t.Reset > 0 {
			l.Cooldown(key, now.Add(t.Reset))
		}
	}
}

// LearnedRate returns the rate key is paced at now, in requests per
// second; zero means it is not paced (nothing learned, learning off, or a
// configured rate).
func (l *Limiter) LearnedRate(key string) float64 {
	if !l.learns(key) {
		return 0
	}
	key = l.groupOf(key)
	v, ok := l.learners.Load(key)
	if !ok {
		return 0
	}
	return v.(*learner).rate(time.Now().UnixNano(), l.curve)
}

// ListenHeaders is Listen for a response's headers: it reads them as
// ParseHeaders does and learns from what they say, and reports whether
// they said anything. It reads the clock only when a rate-limit header is
// there, and a response without any costs one pass over its header map
// and no allocation.
func (l *Limiter) ListenHeaders(key string, h http.Header) bool {
	if l.learnOff || len(h) == 0 {
		return false
	}
	sig, ok, now := parseHeadersLazily(h, time.Now)
	if ok {
		l.Listen(key, sig, now)
	}
	return ok
}
