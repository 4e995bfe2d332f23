package health

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/policy"
	"github.com/sturdyai/sturdy/internal/window"
)

// Member is the health state of one endpoint of a Tracker. Get it from
// Tracker.Add and keep it: its methods are the hot path. It is safe for
// concurrent use.
type Member struct {
	t    *Tracker
	name string

	// Read without the lock by Allowed and State; written under mu.
	stateA atomic.Uint32 // State
	untilA atomic.Int64  // end of the current ejection, tracker time
	coolA  atomic.Int64  // end of the current cooldown, tracker time; 0: none

	mu      sync.Mutex
	state   State
	until   int64 // end of the current ejection
	removed bool  // no longer counted by the tracker

	// consecutive is the failures in a row while Healthy: incremented
	// under mu, zeroed by a success without it.
	consecutive atomic.Int64
	// The calls while Healthy or in Probation since the last ejection,
	// over the FailureRate window: failures in win (as A and B), written
	// under mu, and successes in ok, which a Healthy member's success
	// counts without the lock.
	win         window.Ring
	ok          okRing
	probationOK int // successes in the current probation

	ejections int   // n of the next ejection minus one; decays while Healthy
	decayFrom int64 // when the decay of ejections was last applied

	// Availability: the current period started at since; earlier
	// periods are summed in up and down.
	since    int64
	up, down int64
	failures int
}

func newMember(t *Tracker, name string, now int64) *Member {
	return &Member{
		t:         t,
		name:      name,
		win:       window.New(int64(t.cfg.Window), windowBuckets),
		ok:        newOKRing(int64(t.cfg.Window)),
		since:     now,
		decayFrom: now,
	}
}

// Name returns the endpoint name the member was added under.
func (m *Member) Name() string { return m.name }

// Allowed reports whether the member may take traffic: it is Healthy or
// in Probation, and not cooling down after an overloaded answer. On a
// healthy member it is two atomic loads; on an ejected or cooling one it
// also reads the clock, and moves the member to Probation if its ejection
// has ended. A cooldown that has ended counts as cooling for this cost
// until the next Tracker.Epoch clears it (a Balancer calls Epoch on every
// pick).
func (m *Member) Allowed() bool {
	if State(m.stateA.Load()) != Ejected {
		if c := m.coolA.Load(); c != 0 && m.t.now() < c {
			return false
		}
		return true
	}
	return m.slowState() != Ejected
}

// Cooldown keeps the member from taking traffic until the given time,
// without ejecting it: the endpoint is busy, not broken, so its health
// state, ejection count and availability figures do not change. A
// cooldown never shortens one already running. Observe calls it for an
// Overloaded outcome that carries a Retry-After.
func (m *Member) Cooldown(until time.Time) {
	end := int64(until.Sub(m.t.base))
	for {
		cur := m.coolA.Load()
		if end <= cur || end <= m.t.now() {
			return
		}
		if m.coolA.CompareAndSwap(cur, end) {
			break
		}
	}
	m.t.noteExpiry(end)
	m.t.epoch.Add(1)
}

// CoolingDown reports whether a cooldown keeps the member from traffic now.
func (m *Member) CoolingDown() bool {
	c := m.coolA.Load()
	return c != 0 && m.t.now() < c
}

// State returns the member's state, noticing an ended ejection first.
func (m *Member) State() State {
	if s := State(m.stateA.Load()); s != Ejected {
		return s
	}
	return m.slowState()
}

// slowState is State for a member last seen Ejected.
func (m *Member) slowState() State {
	now := m.t.now()
	if now < m.untilA.Load() {
		return Ejected
	}
	var ch changes
	m.mu.Lock()
	m.advance(now, &ch)
	s := m.state
	m.mu.Unlock()
	ch.fire(m.t.cfg.OnStateChange)
	return s
}

// Observe reports the outcome of one call to the member's endpoint.
//
// Only classes that speak of the endpoint count: Success is a success,
// and the failure classes (Unavailable, Timeout, Auth: those for which
// Class.Failure is true) are failures. Overloaded (saturation, not
// sickness), TooLarge, Fatal and Canceled are ignored. Auth ejects at
// once. Outcomes reported while the member is ejected (calls that started
// before the ejection, or that a balancer in panic mode sent anyway) are
// ignored too: the ejection runs its course, or a probe ends it.
//
// An Overloaded outcome with a RetryAfter puts the member in a cooldown
// until then (see Cooldown): not allowed, but not ejected.
//
// A success counts in the FailureRate window as of o.End, when the
// endpoint answered (the clock when End is zero), so one reported long
// after (a streamed answer released at its end) may have left the window
// already; it never displaces the counts of calls that ended later. On a
// Healthy member it takes no lock and reads no clock.
func (m *Member) Observe(o sturdy.Outcome) {
	if o.Class == sturdy.Success && State(m.stateA.Load()) == Healthy {
		// Nothing to change but the counts: the decay of the ejection
		// count (advance) waits for the next call that takes the lock,
		// which applies it alike.
		if m.consecutive.Load() != 0 {
			m.consecutive.Store(0)
		}
		if !m.ok.add(m.t.end(o)) {
			m.mu.Lock()
			m.ok.reset(m.t.end(o))
			m.mu.Unlock()
		}
		return
	}
	if o.Class == sturdy.Overloaded && o.RetryAfter > 0 {
		m.Cooldown(m.t.at(m.t.now() + int64(o.RetryAfter)))
		return
	}
	failure := o.Class.Failure()
	if !failure && o.Class != sturdy.Success {
		return
	}
	if failure && errors.Is(o.Err, policy.ErrAttemptTimeout) {
		// Cut by sturdy's own attempt timeout: the endpoint was slower
		// than the tier's recent latencies, which the balancer weighs (and
		// forgets as soon as it is fast again). Ejecting it for that would
		// keep a replica that recovers out for the whole ejection.
		return
	}
	now := m.t.now()
	var ch changes
	m.mu.Lock()
	m.advance(now, &ch)
	switch m.state {
	case Healthy:
		if !failure {
			// Healthy again by the time the lock was taken: as above.
			m.consecutive.Store(0)
			m.countOK(m.t.end(o))
			break
		}
		m.win.Add(now, 1, 1)
		n := m.consecutive.Add(1)
		cfg := &m.t.cfg
		switch {
		case o.Class == sturdy.Auth:
			m.eject(now, ReasonAuth, true, &ch)
		case cfg.ConsecutiveFailures > 0 && n >= int64(cfg.ConsecutiveFailures):
			m.eject(now, ReasonConsecutiveFailures, true, &ch)
		case cfg.FailureRate >= 0:
			c := m.win.Sum(now)
			c.A += m.ok.sum(now)
			if c.A >= int64(cfg.MinCalls) && float64(c.B) >= cfg.FailureRate*float64(c.A) {
				m.eject(now, ReasonFailureRate, true, &ch)
			}
		}
	case Probation:
		if failure {
			m.win.Add(now, 1, 1)
		} else {
			m.countOK(m.t.end(o))
		}
		switch {
		case o.Class == sturdy.Auth:
			m.eject(now, ReasonAuth, true, &ch)
		case failure:
			m.eject(now, ReasonProbationFailure, true, &ch)
		default:
			m.probationOK++
			if m.probationOK >= m.t.cfg.ProbationSuccesses {
				m.transition(now, Healthy, ReasonSuccess, &ch)
			}
		}
	}
	m.mu.Unlock()
	ch.fire(m.t.cfg.OnStateChange)
}

// ProbeResult reports the result of an active probe of the member's
// endpoint: nil means the probe succeeded.
//
// A success ends an ejection early (Ejected → Probation, reason
// "probe_success"); on an allowed member it changes nothing, leaving
// real traffic to decide. A failure ejects a Healthy or Probation member
// (reason "probe_failure"), even beyond Config.MaxEjectedShare: the
// endpoint is known to be down, and a balancer should see that (and panic
// if too many are); on an ejected member it changes nothing.
func (m *Member) ProbeResult(err error) {
	now := m.t.now()
	var ch changes
	m.mu.Lock()
	m.advance(now, &ch)
	switch {
	case err == nil && m.state == Ejected:
		m.transition(now, Probation, ReasonProbeSuccess, &ch)
	case err != nil && m.state != Ejected:
		m.eject(now, ReasonProbeFailure, false, &ch)
	}
	m.mu.Unlock()
	ch.fire(m.t.cfg.OnStateChange)
}

// advance applies what the passing of time did: the end of an ejection,
// and the decay of the ejection count. m.mu must be held.
func (m *Member) advance(now int64, ch *changes) {
	if m.state == Ejected && now >= m.until {
		m.transition(m.until, Probation, ReasonExpired, ch)
	}
	if m.state == Healthy && m.ejections > 0 {
		base := int64(m.t.cfg.BaseEjection)
		if k := (now - m.decayFrom) / base; k > 0 {
			if int64(m.ejections) <= k {
				m.ejections = 0
			} else {
				m.ejections -= int(k)
			}
			m.decayFrom += k * base
		}
	}
}

// eject ejects the member at now, if the tracker's ejected share allows
// it (capped) or unconditionally (!capped). The ejection lasts
// min(n × BaseEjection, MaxEjection) for the n-th ejection. m.mu must be
// held and the member must not be ejected.
func (m *Member) eject(now int64, reason string, capped bool, ch *changes) {
	if !m.removed && !m.t.reserveEjection(capped) {
		return
	}
	cfg := &m.t.cfg
	base, maxE := int64(cfg.BaseEjection), int64(cfg.MaxEjection)
	// Once n × BaseEjection reaches MaxEjection, n stops growing, so a
	// member that flapped for long recovers its short ejections after at
	// most MaxEjection of health.
	if int64(m.ejections) < (maxE+base-1)/base {
		m.ejections++
	}
	d := min(int64(m.ejections)*base, maxE)
	m.until = now + d
	m.untilA.Store(m.until)
	m.transition(now, Ejected, reason, ch)
	if !m.removed {
		m.t.noteExpiry(m.until)
	}
}

// transition moves the member to state to at time at, keeping the
// availability account, the tracker's ejected count and epoch, and
// queueing the change for the hook. m.mu must be held. A move into Ejected
// must already be reserved with the tracker (see eject).
func (m *Member) transition(at int64, to State, reason string, ch *changes) {
	from := m.state
	if d := at - m.since; d > 0 {
		if from.allowed() {
			m.up += d
		} else {
			m.down += d
		}
	}
	m.since = at
	switch {
	case to == Ejected:
		m.failures++
		m.consecutive.Store(0)
		m.probationOK = 0
		m.win.Reset()
		m.ok.clear()
	case from == Ejected:
		if !m.removed {
			m.t.ejected.Add(-1)
		}
	}
	switch to {
	case Probation:
		m.probationOK = 0
	case Healthy:
		m.decayFrom = at
	}
	m.state = to
	m.stateA.Store(uint32(to))
	m.t.epoch.Add(1)
	ch.add(StateChange{Endpoint: m.name, From: from, To: to, At: m.t.at(at), Reason: reason})
}

// windowBuckets is the resolution of the failure-rate window: it slides in
// steps of Window/10, so a call is forgotten between 0.9 × Window and
// Window after it was observed.
const windowBuckets = 10

// countOK counts a success at t in ok; m.mu must be held.
func (m *Member) countOK(t int64) {
	if !m.ok.add(t) {
		m.ok.reset(t)
	}
}

// okRing counts a member's successes over the FailureRate window, as
// window.Ring does, with atomics: a success in a bucket already begun is
// counted without the member's lock. Buckets are reset under the lock,
// and never to an older slice than they hold, so a success reported late
// never wipes the counts of newer ones: it is counted in the bucket that
// holds newer calls.
type okRing struct {
	width int64
	b     [windowBuckets]struct {
		slot atomic.Int64 // the absolute slice the bucket holds, plus one (0: empty)
		n    atomic.Int64
	}
}

func newOKRing(span int64) okRing {
	return okRing{width: max(span/windowBuckets, 1)}
}

// add counts a success at t, unless its bucket holds an older slice (or
// none) and must be reset first: then it reports false.
func (r *okRing) add(t int64) bool {
	s := t/r.width + 1
	bk := &r.b[s%windowBuckets]
	if bk.slot.Load() < s {
		return false
	}
	bk.n.Add(1)
	return true
}

// reset counts a success at t after add refused it, resetting its bucket
// if it still holds an older slice; the member's lock must be held.
func (r *okRing) reset(t int64) {
	s := t/r.width + 1
	bk := &r.b[s%windowBuckets]
	if bk.slot.Load() < s {
		// The count first, then the slice: an add that sees the new
		// slice sees its count reset.
		bk.n.Store(0)
		bk.slot.Store(s)
	}
	bk.n.Add(1)
}

// sum is the successes counted in the window that ends at now.
func (r *okRing) sum(now int64) int64 {
	oldest := now/r.width + 1 - (windowBuckets - 1)
	var n int64
	for i := range r.b {
		if bk := &r.b[i]; bk.slot.Load() >= max(oldest, 1) {
			n += bk.n.Load()
		}
	}
	return n
}

// clear empties the ring; the member's lock must be held. A success
// counted without the lock as it clears may survive it.
func (r *okRing) clear() {
	for i := range r.b {
		r.b[i].slot.Store(0)
		r.b[i].n.Store(0)
	}
}
