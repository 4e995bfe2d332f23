package balancer

import (
	"math"
	"sync"
	"sync/atomic"
)

// peakEWMA is one endpoint's latency estimate, in nanoseconds, as in
// Finagle's PeakEwma and linkerd2-proxy's peak_ewma: it jumps to any
// sample above the current estimate (so a slowdown is noticed at once),
// moves toward lower samples with a weight that grows with the time since
// the previous sample, and decays toward zero while the endpoint is not
// observed, so that an idle slow endpoint is eventually tried again.
//
// Let r be the estimate as a pick sees it now (the stored value decayed by
// w = exp(-Δt/τ), Δt the time since the previous sample). A sample x > r
// replaces it; a lower one gives r·w + x·(1-w), which lies between x and r:
// on a busy endpoint (w near 1) that is a time-weighted average over about
// τ, and an endpoint not heard from for a while takes a new sample nearly
// at face value. A sample never moves the estimate away from itself.
//
// Finagle and Linkerd decay by recording a zero sample, and restamping, on
// every read. Here a read computes the decayed value without writing: the
// value a pick sees is the same, reads need no lock and do not bounce
// cache lines between cores, and (the one difference) a sample's weight
// depends on the time since the previous sample rather than since the
// previous pick, so a fast answer from an endpoint that had been idle
// counts instead of being nearly ignored.
//
// Writers serialise on mu and publish each new (cost, stamp) pair in the
// slot the last write did not use, then bump the version: a reader takes
// the pair in the version's slot and keeps it if the version has not moved
// meanwhile. A reader never waits for a writer (a write in progress is on
// the other slot) and retries only if a whole write completed during its
// two loads. Times are nanoseconds on the Balancer's monotonic clock
// (params.now), and rate is 1/τ; the methods take both explicitly so the
// arithmetic is testable without a clock.
type peakEWMA struct {
	mu   sync.Mutex
	ver  atomic.Uint64 // writes so far; the current pair is in slot[ver&1]
	slot [2]struct {
		cost  atomic.Uint64 // math.Float64bits of the estimate at stamp
		stamp atomic.Int64
	}
}

func (p *peakEWMA) init(cost float64, now int64) {
	p.slot[0].cost.Store(math.Float64bits(cost))
	p.slot[0].stamp.Store(now)
}

// load returns a consistent (cost, stamp) pair.
func (p *peakEWMA) load() (float64, int64) {
	for {
		v := p.ver.Load()
		sl := &p.slot[v&1]
		c, t := sl.cost.Load(), sl.stamp.Load()
		if p.ver.Load() == v {
			return math.Float64frombits(c), t
		}
	}
}

// lock makes the caller the only writer and returns the pair as it
// stands; unlock publishes the new one.
func (p *peakEWMA) lock() (float64, int64) {
	p.mu.Lock()
	sl := &p.slot[p.ver.Load()&1]
	return math.Float64frombits(sl.cost.Load()), sl.stamp.Load()
}

func (p *peakEWMA) unlock(cost float64, now int64) {
	v := p.ver.Load()
	sl := &p.slot[(v+1)&1]
	sl.cost.Store(math.Float64bits(cost))
	sl.stamp.Store(now)
	p.ver.Store(v + 1)
	p.mu.Unlock()
}

// decay is how an estimate fades, in the units of params: rate is 1/τ
// (Config.Decay), fast is 1/PeakDecay (0: peaks fade with rate alone) and
// base is the endpoint's usual latency (0: not known yet).
type decay struct {
	rate, fast, base float64
}

// decayed is estimate c as it stands age after its stamp: the part above
// the endpoint's usual latency fades with the fast rate, so a replica that
// was slow for a moment and has recovered regains its share within a few
// PeakDecay, and the whole decays toward zero with rate, so an idle
// endpoint is tried again once it has rested. Without a base (never
// answered) or without a fast rate it is plain Peak-EWMA's c·exp(-age/τ).
func (d decay) decayed(c float64, age int64) float64 {
	if age <= 0 {
		return c
	}
	if d.fast > 0 && d.base > 0 && c > d.base {
		c = d.base + (c-d.base)*weight(age, d.fast)
	}
	return c * weight(age, d.rate)
}

// lower and upper bound d.decayed(c, age), age > 0, without exp: a pick
// compares an older estimate decayed to a newer one's stamp with the
// newer one, and unless the two are within a few parts in a million of
// each other (at ages up to a tenth of Decay), a bound decides which is
// lower.
func (d decay) lower(c float64, age int64) float64 {
	w := expLower(float64(age) * d.rate)
	if d.fast > 0 && d.base > 0 && c > d.base {
		return w * (d.base + (c-d.base)*expLower(float64(age)*d.fast))
	}
	return w * c
}

func (d decay) upper(c float64, age int64) float64 {
	w := expUpper(float64(age) * d.rate)
	if d.fast > 0 && d.base > 0 && c > d.base {
		return w * (d.base + (c-d.base)*expUpper(float64(age)*d.fast))
	}
	return w * c
}

// decayedFor is d.decayed(c, age) for a pick that compares it, times n,
// with v: a bound of the decay (lower, upper) stands in for it when that
// bound alone decides the comparison, more than boundMargin away from v.
// The older estimate looks dearer there, and the lower bound, which needs
// no division, mostly says it still is; only near-ties pay for exp.
func (d decay) decayedFor(c float64, age int64, n, v float64) float64 {
	if lo := d.lower(c, age); lo*n > v*(1+boundMargin) {
		return lo
	}
	if hi := d.upper(c, age); hi*n < v*(1-boundMargin) {
		return hi
	}
	return d.decayed(c, age)
}

// boundMargin is how far (a share) a decayed estimate's bound must be from
// the cost it is compared with to be trusted: it covers the rounding of
// decayed's arithmetic, which may put its result a few ulps outside the
// bounds.
const boundMargin = 1e-9

// expLower and expUpper bound exp(-x), x ≥ 0, and so weight's value for
// x. expLower is the Taylor polynomial to x³, weight's value for small x,
// which lies below exp(-x) for any x ≥ 0 (Taylor's remainder has the sign
// of the next term, x⁴/24, as exp(-x)'s derivatives alternate in sign).
// expUpper is 1/(1 + x + x²/2), above exp(-x) as exp(x) ≥ 1 + x + x²/2.
// Their gap is about x³/6: 2e-7 for 100 ms at the default Decay of 10 s.
func expLower(x float64) float64 { return max(1-x*(1-x*(0.5-x*(1.0/6))), 0) }

func expUpper(x float64) float64 { return 1 / (1 + x*(1+x*0.5)) }

// weight is exp(-Δt/τ): how much of an estimate survives Δt. rate is
// 1/τ, so that the hot path multiplies rather than divides.
func weight(dt int64, rate float64) float64 {
	if dt <= 0 {
		return 1
	}
	x := float64(dt) * rate
	if x < 1e-3 {
		// A busy endpoint's samples are micro- to milliseconds apart:
		// four Taylor terms are exact to 1e-13 and skip math.Exp, a
		// sizeable share of a pick.
		return 1 - x*(1-x*(0.5-x*(1.0/6)))
	}
	return math.Exp(-x)
}

// at returns the estimate as of now: the last value, decayed.
func (p *peakEWMA) at(now int64, d decay) float64 {
	c, t := p.load()
	return d.decayed(c, now-t)
}

// quiet is the share of τ within which a write that would not raise the
// estimate is dropped (100 µs at the default τ of 10 s). Such a sample
// could move the estimate by less than that share: a lower sample weighs
// 1-w ≤ quiet, and a sample between the decayed and the stored value
// differs from the stored one by no more than the decay over that time.
// The next sample written weighs the whole time since the last write, so
// the average stays weighted by time; what the rule saves is a write to a
// cache line every core reads, which on a busy endpoint is most of what a
// pick costs. A success is never dropped while the estimate holds a
// Timeout's penalty (the usual latency is below it): it halves the
// penalty (observe), which is no small move.
const quiet = 1e-5

// How a write moves the endpoint's usual latency (load.base).
type baseMove uint8

const (
	// baseSample folds the sample in as the estimate does: a success,
	// which also halves what Timeouts added to the estimate above it.
	baseSample baseMove = iota
	// baseKeep only decays it: a Timeout, whose penalty is to fade over
	// PeakDecay toward the usual latency.
	baseKeep
	// baseRaise lifts it to the sample if that is higher: the other
	// failures, whose penalty is to fade only with Decay.
	baseRaise
)

// snap is how close (a share of the estimate) the estimate must come to
// the usual latency for a write to make them equal.
const snap = 1e-3

// observe folds a sample x in at now (see the type's doc); r, the
// estimate the sample is weighed against, is the stored one decayed by d,
// less, for a success (how is baseSample) with a fast rate, half of what
// Timeouts added above the usual latency.
// base, if not nil, is the endpoint's usual latency (math.Float64bits,
// stamped with the estimate), which the write moves as how says.
func (p *peakEWMA) observe(x float64, now int64, d decay, base *atomic.Uint64, how baseMove) {
	if c, t := p.load(); x <= c && float64(now-t)*d.rate < quiet && !(how == baseSample && d.fast > 0 && d.base < c) {
		return
	}
	c, t := p.lock()
	if now < t {
		now = t // another core's clock read raced ahead; keep time monotonic
	}
	w := weight(now-t, d.rate)
	b := d.base
	if base != nil {
		b = math.Float64frombits(base.Load()) // the latest, under the lock
		d.base = b
		if b == 0 {
			b = c // none yet: it starts where the estimate does
		}
	}
	r := d.decayed(c, now-t)
	if how == baseSample && d.fast > 0 {
		if bw := b * w; r > bw {
			// An answer in time says the endpoint is no longer as slow
			// as its Timeouts made it look: halve what they added, as
			// each of them doubled the estimate. Fading over PeakDecay
			// alone, a penalty ignores the answers: bench/sim's recovery
			// scenario traced a replica answering in 20-75ms for a
			// second while its estimate fell from 317ms to 97ms, the
			// others' being about 95ms.
			r = bw + (r-bw)/2
		}
	}
	if x > r {
		c = x
	} else {
		c = r*w + x*(1-w)
	}
	if base != nil {
		b *= w
		switch {
		case how == baseSample && x > b:
			b = x
		case how == baseSample:
			b = b*w + x*(1-w)
		case how == baseRaise:
			b = max(b, x)
		}
		if c-b < snap*c {
			// What is left of a penalty is lost in the noise: make the
			// two equal again, so that reads skip the fade (and its exp).
			b = c
		}
		base.Store(math.Float64bits(b))
	}
	p.unlock(c, now)
}

// raise lifts the estimate to x if x is above it, and otherwise leaves it
// alone: for samples that are only a lower bound on the endpoint's latency.
// base, if not nil, is lifted with it: a lower bound is latency, not a
// failure's penalty.
func (p *peakEWMA) raise(x float64, now int64, d decay, base *atomic.Uint64) {
	c, t := p.lock()
	if now < t {
		now = t
	}
	if x > d.decayed(c, now-t) {
		if base != nil {
			b := math.Float64frombits(base.Load())
			if b == 0 {
				b = c
			}
			base.Store(math.Float64bits(max(b*weight(now-t, d.rate), x)))
		}
		c, t = x, now
	}
	p.unlock(c, t)
}
