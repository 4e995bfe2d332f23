package balancer

import (
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
	_    [cacheLine - 16]byte

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

// cost is P2C's price of sending one more attempt to the endpoint.
func (l *load) cost(now int64) float64 {
	return l.ewma.at(now, l.p.rate) * float64(l.inflight()+1)
}

// finish settles one attempt. It is the done func Pick returns; calling it
// more than once for one Pick corrupts the outstanding count (detecting
// that would need a per-pick token, that is an allocation per pick).
//
// What an outcome teaches Peak-EWMA depends on its class:
//   - Success: the latency is a sample.
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
		switch c := o.Class; {
		case c == sturdy.Success:
			l.ewma.observe(x, now, p.rate)
		case c.Failure() || c == sturdy.Overloaded:
			r := l.ewma.at(now, p.rate)
			penalty := 2 * r
			if penalty > p.maxPenalty {
				penalty = max(p.maxPenalty, r) // hold, never lower
			}
			l.ewma.observe(max(x, p.defaultRTT, penalty), now, p.rate)
		default:
			l.ewma.raise(x, now, p.rate)
		}
	case LeastOutstanding:
		l.outstanding.Add(-1)
	}
	if l.member != nil {
		l.member.Observe(o)
	}
}
