package balancer

import (
	"math"
	"sync/atomic"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
)

// load is what the Balancer has learned about one endpoint: attempts in
// flight, the Peak-EWMA latency estimate and the health member. It
// outlives snapshots: Update carries it over for every endpoint that
// stays, even if the endpoint's other fields change, so done funcs of
// attempts picked from an older snapshot still settle the right counter.
//
// It fills two cache lines exactly (a 128-byte object is 64-byte aligned).
// The first holds what picks and dones write, the counter, and the done
// func, which a pick reads only once it holds that line for its increment.
// The second holds what they only read, the parameters, the health member
// and the estimate (which few dones write, see quiet): a done reads the
// policy there and then takes the counter's line once, to write, rather
// than once to read and again to write; and one core's counting does not
// take the estimate away from another core's cache.
type load struct {
	outstanding atomic.Int64 // attempts picked and not yet done (all but the round-robins)
	// done is finish as a func value, made once here so that Pick hands
	// it out without allocating.
	done func(sturdy.Outcome)
	// base is the endpoint's usual latency, in ns (math.Float64bits; 0
	// until the first write, which starts it where the estimate is),
	// stamped with the estimate: Peak-EWMA over its successes (and the
	// lower bounds and errors, see baseMove) but not over its Timeouts'
	// penalties, which fade back to it at the fast rate (decay.decayed).
	// Until a Timeout it equals the estimate. It is written only with the
	// estimate, under its lock, so rarely on a busy endpoint, and read by
	// picks, which hold this line for the counter anyway.
	base atomic.Uint64
	// report is the endpoint's latest load report (packReport; 0 when it
	// has sent none, or nothing but zeros).
	report atomic.Uint64
	_      [cacheLine - 32]byte

	p      *params
	member *health.Member
	ewma   peakEWMA // P2CPeakEWMA and PrefixAffinity only; with the two pointers, fills the line
}

const cacheLine = 64

// newLoad starts an endpoint at DefaultRTT as of now. Endpoints added
// together share now, so that they tie exactly until one is observed.
func newLoad(p *params, member *health.Member, now int64) *load {
	l := &load{p: p, member: member}
	l.ewma.init(p.defaultRTT, now)
	l.done = l.finish
	return l
}

// inflight is the outstanding count, clamped at zero: a done called twice
// drives the counter negative, and an endpoint must not look better than
// idle because of it.
func (l *load) inflight() int64 {
	return max(l.outstanding.Load(), 0)
}

// take counts an attempt picked for the endpoint, for PrefixAffinity.
func (l *load) take() {
	l.outstanding.Add(1)
	l.p.total.Add(1)
}

// baseFor returns the usual latency to keep up to date, nil when
// nothing reads it (PeakDecay negative).
func (l *load) baseFor() *atomic.Uint64 {
	if l.p.fast == 0 {
		return nil
	}
	return &l.base
}

// decay returns how the endpoint's estimate fades.
func (l *load) decay() decay {
	return decay{rate: l.p.rate, fast: l.p.fast, base: math.Float64frombits(l.base.Load())}
}

// cost is P2C's price of sending one more attempt to the endpoint.
func (l *load) cost(now int64) float64 {
	c, t := l.ewma.load()
	return l.price(l.decay().decayed(c, now-t), now-t, float64(l.inflight()+1))
}

// price is the cost of an endpoint whose decayed estimate is est, its
// estimate's stamp age old, with n-1 attempts in flight: est × n, as in
// Finagle, when it sent no load report. A report adds its queue to the
// attempts ahead of a new one, and divides by 1 − ρ for its utilization
// ρ (an M/M/1 queue's stretch of the service time), both fading with the
// estimate; see the package doc.
func (l *load) price(est float64, age int64, n float64) float64 {
	r := l.report.Load()
	if r == 0 {
		return est * n
	}
	q, rho := unpackReport(r)
	w := weight(age, l.p.rate)
	return est * (n + q*w) / (1 - rho*w)
}

// maxQueue and maxRho bound what a report can do to a cost: a queue is
// counted up to a million requests, and a utilization up to 0.9 (a cost
// at most 10× the latency's).
const (
	maxQueue = 1e6
	maxRho   = 0.9
)

// packReport keeps what P2C uses of a report in one word: the queue and
// the utilization ρ = max(KVCache, Utilization), capped, as float32s.
func packReport(r *sturdy.LoadReport) uint64 {
	q := min(max(r.Queue, 0), maxQueue)
	rho := min(max(r.KVCache, r.Utilization, 0), maxRho)
	return uint64(math.Float32bits(float32(q)))<<32 | uint64(math.Float32bits(float32(rho)))
}

func unpackReport(r uint64) (q, rho float64) {
	return float64(math.Float32frombits(uint32(r >> 32))), float64(math.Float32frombits(uint32(r)))
}

// finish settles one attempt. It is the done func Pick returns; calling it
// more than once for one Pick corrupts the outstanding count (detecting
// that would need a per-pick token, that is an allocation per pick).
//
// What an outcome teaches Peak-EWMA depends on its class:
//   - Success: the latency is a sample, and what Timeouts' penalties
//     added above the usual latency is halved first (see the package
//     doc's Recovery).
//   - Unavailable, Timeout, Auth and Overloaded: a failure that came back
//     fast must not make the endpoint look fast, so the sample is
//     max(latency, DefaultRTT, 2 × current estimate), the doubling capped
//     at max(1 minute, 2 × DefaultRTT) (above the cap a failure holds the
//     estimate). Each further failure doubles it again, steering P2C away
//     long before health ejects the endpoint; decay brings the endpoint
//     back once it has rested. A failure never lowers the estimate.
//   - Canceled, TooLarge, Fatal: the endpoint did not do (or finish) the
//     work, so the latency is only a lower bound on what it would have
//     taken: it can raise the estimate but never lower it.
func (l *load) finish(o sturdy.Outcome) {
	p := l.p
	switch p.policy {
	case P2CPeakEWMA, PrefixAffinity:
		l.outstanding.Add(-1)
		if p.total != nil {
			p.total.Add(-1)
		}
		now := p.nowAt(o.End)
		x := float64(o.Latency)
		if o.Load != nil {
			l.report.Store(packReport(o.Load))
		}
		d, base := l.decay(), l.baseFor()
		switch c := o.Class; {
		case c == sturdy.Success:
			l.ewma.observe(x, now, d, base, baseSample)
		case c.Failure() || c == sturdy.Overloaded:
			r := l.ewma.at(now, d)
			penalty := 2 * r
			if penalty > p.maxPenalty {
				penalty = max(p.maxPenalty, r) // hold, never lower
			}
			how := baseRaise // an error: shunned as pure Peak-EWMA shuns it
			if c == sturdy.Timeout {
				how = baseKeep // slow, not broken: the penalty fades over PeakDecay
			}
			l.ewma.observe(max(x, p.defaultRTT, penalty), now, d, base, how)
		default:
			l.ewma.raise(x, now, d, base)
		}
	case LeastOutstanding:
		l.outstanding.Add(-1)
	}
	if l.member != nil {
		l.member.Observe(o)
	}
}
