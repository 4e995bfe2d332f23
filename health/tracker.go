package health

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
)

// Tracker keeps the health state of a pool of endpoints, one Member per
// endpoint name. It learns passively from the outcomes of real calls
// (Observe) and, optionally, actively from probes (RunProbes, or
// Member.ProbeResult from a prober of your own).
//
// The hot path is on *Member: keep the pointer Add returns and call
// Member.Allowed before each pick and Member.Observe after each attempt;
// neither allocates, and Allowed on a healthy member is a single atomic
// load. The by-name methods on Tracker look the member up in an immutable
// map snapshot first.
//
// State changes are lazy: there are no timer goroutines. An ejection's end
// is noticed by the next Allowed, Observe, State, Availability or Epoch
// that looks at the clock. Epoch is the balancer's cheap way to learn that
// the set of allowed members may have changed.
//
// A Tracker is safe for concurrent use. Build it with New.
type Tracker struct {
	cfg  Config
	base time.Time // the tracker's clock starts here; times are kept as nanoseconds since base

	mu      sync.Mutex                         // serialises Add, Remove and expiry sweeps
	members atomic.Pointer[map[string]*Member] // immutable snapshot, replaced under mu

	size    atomic.Int64 // members in the map
	ejected atomic.Int64 // members of the map in state Ejected

	epoch      atomic.Uint64
	nextExpiry atomic.Int64 // earliest ejection or cooldown end of any member, or math.MaxInt64
}

// New returns a Tracker configured by cfg, whose zero fields mean their
// documented defaults. It returns an error, naming the field, only for
// values that cannot work.
func New(cfg Config) (*Tracker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cfg, base: time.Now()}
	empty := map[string]*Member{}
	t.members.Store(&empty)
	t.nextExpiry.Store(math.MaxInt64)
	return t, nil
}

// now returns the tracker's clock: nanoseconds since New, read from the
// monotonic clock.
func (t *Tracker) now() int64 { return int64(time.Since(t.base)) }

// end returns when o ended, in tracker time: o.End, or now if End is zero
// or before the tracker's start.
func (t *Tracker) end(o sturdy.Outcome) int64 {
	if !o.End.IsZero() {
		if e := int64(o.End.Sub(t.base)); e >= 0 {
			return e
		}
	}
	return t.now()
}

// at turns a tracker time back into a time.Time.
func (t *Tracker) at(n int64) time.Time { return t.base.Add(time.Duration(n)) }

// Add returns the member named name, creating it, Healthy, if it does not
// exist. An existing member keeps its state. A new member's availability
// clock starts now.
func (t *Tracker) Add(name string) *Member {
	if m := (*t.members.Load())[name]; m != nil {
		return m
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.members.Load()
	if m := old[name]; m != nil {
		return m
	}
	m := newMember(t, name, t.now())
	next := make(map[string]*Member, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = m
	t.members.Store(&next)
	t.size.Add(1)
	t.epoch.Add(1)
	return m
}

// Remove forgets the member named name, if any. A *Member obtained
// earlier keeps working on its own but no longer counts toward the
// tracker's membership or its ejected share; adding the name again
// creates a fresh member.
func (t *Tracker) Remove(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.members.Load()
	m := old[name]
	if m == nil {
		return
	}
	next := make(map[string]*Member, len(old))
	for k, v := range old {
		if k != name {
			next[k] = v
		}
	}
	t.members.Store(&next)
	t.size.Add(-1)
	m.mu.Lock()
	m.removed = true
	if m.state == Ejected {
		t.ejected.Add(-1)
	}
	m.mu.Unlock()
	t.epoch.Add(1)
}

// Member returns the member named name, or nil if there is none.
func (t *Tracker) Member(name string) *Member {
	return (*t.members.Load())[name]
}

// Observe reports the outcome of a call to the endpoint named name. It is
// a no-op for a name the tracker does not know.
func (t *Tracker) Observe(name string, o sturdy.Outcome) {
	if m := t.Member(name); m != nil {
		m.Observe(o)
	}
}

// Allowed reports whether the endpoint named name may take traffic. An
// unknown name is allowed: the tracker has nothing against it.
func (t *Tracker) Allowed(name string) bool {
	if m := t.Member(name); m != nil {
		return m.Allowed()
	}
	return true
}

// State returns the state of the endpoint named name; an unknown name is
// Healthy.
func (t *Tracker) State(name string) State {
	if m := t.Member(name); m != nil {
		return m.State()
	}
	return Healthy
}

// Availability returns the availability figures of the endpoint named
// name, and false if the tracker does not know it.
func (t *Tracker) Availability(name string) (Availability, bool) {
	if m := t.Member(name); m != nil {
		return m.Availability(), true
	}
	return Availability{}, false
}

// Epoch returns a counter that changes whenever the allowed-ness of any
// member may have changed: on every state transition, and on Add and
// Remove. A balancer that caches how many members are allowed (for panic
// mode) calls Epoch on every pick and recounts only when it differs from
// the value it saw last.
//
// Epoch notices expired ejections and cooldowns itself: if the earliest
// end has passed, it moves every expired member to Probation (firing
// OnStateChange) before returning. Otherwise it costs two atomic loads,
// plus one reading of the clock while any member is ejected or cooling,
// and never allocates.
func (t *Tracker) Epoch() uint64 {
	// With nothing ejected or cooling, there is nothing to expire and no
	// need to read the clock.
	if next := t.nextExpiry.Load(); next != math.MaxInt64 {
		if now := t.now(); now >= next {
			t.sweep(now)
		}
	}
	return t.epoch.Load()
}

// sweep moves every member whose ejection has ended to Probation and
// recomputes nextExpiry. It runs rarely: at most once per ejection end.
func (t *Tracker) sweep(now int64) {
	var fired []StateChange
	t.mu.Lock()
	if now < t.nextExpiry.Load() { // another sweep got here first
		t.mu.Unlock()
		return
	}
	// Reset, then lower it again from every member still ejected. A
	// member ejected concurrently lowers it too (under its own lock,
	// which this loop waits for), so no ejection end is lost.
	t.nextExpiry.Store(math.MaxInt64)
	for _, m := range *t.members.Load() {
		var ch changes
		m.mu.Lock()
		m.advance(now, &ch)
		if m.state == Ejected {
			t.noteExpiry(m.until)
		}
		if c := m.coolA.Load(); c > now {
			t.noteExpiry(c)
		} else if c != 0 {
			// Ended: clear it so that Allowed reads no clock again. A
			// cooldown set meanwhile makes the swap fail and stays.
			m.coolA.CompareAndSwap(c, 0)
		}
		m.mu.Unlock()
		fired = append(fired, ch.buf[:ch.n]...)
	}
	// A cooldown that ended changes no state, but does change what is
	// allowed: tell the balancers to recount.
	t.epoch.Add(1)
	t.mu.Unlock()
	if hook := t.cfg.OnStateChange; hook != nil {
		for _, sc := range fired {
			hook(sc)
		}
	}
}

// noteExpiry lowers nextExpiry to end if end is earlier.
func (t *Tracker) noteExpiry(end int64) {
	for {
		cur := t.nextExpiry.Load()
		if end >= cur || t.nextExpiry.CompareAndSwap(cur, end) {
			return
		}
	}
}

// reserveEjection counts one more ejected member, unless the ejection is
// capped and would take the ejected count above
// max(1, floor(MaxEjectedShare × members)).
func (t *Tracker) reserveEjection(capped bool) bool {
	// The epsilon keeps products such as 0.29 × 100 = 28.999… at 29.
	limit := max(1, int64(math.Floor(t.cfg.MaxEjectedShare*float64(t.size.Load())+1e-9)))
	for {
		cur := t.ejected.Load()
		if capped && cur >= limit {
			return false
		}
		if t.ejected.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}
