package ratelimit

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The in-process store keeps each bucket as a GCRA "theoretical arrival
// time" (TAT): the instant at which the bucket would be full again. It is
// the token bucket of x/time/rate seen from the other side (tokens
// available at now = burst − (TAT − now)/interval), but one integer per
// bucket, which is also what a Redis script would keep. Times are
// nanoseconds since the store's base instant, so monotonic clock readings
// survive the conversion.

const never = math.MinInt64 // a TAT or cooldown that is already over

// rule is a bucket's limit in the units the arithmetic needs.
type rule struct {
	interval float64 // nanoseconds per unit; 0 means unlimited
	tau      float64 // burst × interval: how far TAT may run ahead of now
	burst    int64
}

func rulesOf(lim Limit) (req, tok rule) {
	if lim.RequestsPerSecond > 0 {
		req.interval = 1e9 / lim.RequestsPerSecond
		req.burst = int64(lim.Burst)
		req.tau = float64(req.burst) * req.interval
	}
	if lim.TokensPerMinute > 0 {
		tok.interval = 60e9 / float64(lim.TokensPerMinute)
		tok.burst = lim.TokenBurst
		tok.tau = float64(tok.burst) * tok.interval
	}
	return req, tok
}

// wait returns how long after now n units can be charged to a bucket whose
// TAT is tat (≤ 0: at once). A charge larger than the burst needs only a
// full bucket; it then leaves the bucket in debt.
func (r rule) wait(tat, now, n int64) int64 {
	if r.interval == 0 || n <= 0 {
		return 0
	}
	f := float64(max(tat, now)-now) + float64(min(n, r.burst))*r.interval - r.tau
	if f <= 0 {
		return 0
	}
	return toNanos(math.Ceil(f))
}

// charge returns the TAT after n units (negative: given back) are charged
// at now. A bucket cannot hold more than its burst, so TAT never falls
// behind now.
func (r rule) charge(tat, now, n int64) int64 {
	if r.interval == 0 || n == 0 {
		return tat
	}
	return max(addSat(max(tat, now), toNanos(math.Round(float64(n)*r.interval))), now)
}

func toNanos(f float64) int64 {
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func addSat(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// entry is one key's state. dead marks an entry removed from the map; a
// caller that finds it dead looks the key up again.
type entry struct {
	mu       sync.Mutex
	reqTAT   int64
	tokTAT   int64
	cooldown int64 // refuse until then
	lastUsed int64
	dead     bool
}

// idle reports whether e is indistinguishable from a key never seen: both
// buckets full and no cooldown. Dropping such an entry loses nothing.
func (e *entry) idle(now int64) bool {
	return e.reqTAT <= now && e.tokTAT <= now && e.cooldown <= now
}

// memStore is the in-process Store: a sync.Map of entries (lock-free
// lookups of existing keys), one mutex per key, and a bound on the number
// of keys enforced by sweeps when an insert overflows it.
type memStore struct {
	base    time.Time
	maxKeys int64
	m       sync.Map // string → *entry
	n       atomic.Int64
	sweepMu sync.Mutex
}

var _ Store = (*memStore)(nil)

// NewMemoryStore returns the in-process Store that New uses when
// Config.Store is nil, remembering at most maxKeys keys as Config.MaxKeys
// describes (≤ 0: DefaultMaxKeys). It is exported for shared stores that
// fall back to local limits when their database is unreachable; a Limiter
// given it through Config.Store works, but more slowly than with a nil
// Config.Store.
func NewMemoryStore(maxKeys int) Store {
	return newMemStore(max(maxKeys, 0))
}

func newMemStore(maxKeys int) *memStore {
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	return &memStore{base: time.Now(), maxKeys: int64(maxKeys)}
}

func (s *memStore) offset(t time.Time) int64 { return int64(t.Sub(s.base)) }

// lock returns key's live entry, locked, creating it if create is set; nil
// if it does not exist and create is not set. full reports that creating
// it took the store over its bound: the caller sweeps once it has
// unlocked the entry. A new entry is stored already locked, so that a
// concurrent sweep cannot drop it (it is idle) before its creator charges
// it; otherwise creators could keep evicting each other's new entries.
func (s *memStore) lock(key string, now int64, create bool) (e *entry, full bool) {
	for {
		v, ok := s.m.Load(key)
		if !ok {
			if !create {
				return nil, false
			}
			e = &entry{reqTAT: never, tokTAT: never, cooldown: never, lastUsed: now}
			e.mu.Lock()
			if v, ok = s.m.LoadOrStore(key, e); !ok {
				return e, s.n.Add(1) > s.maxKeys
			}
		}
		e = v.(*entry)
		e.mu.Lock()
		if !e.dead {
			return e, false
		}
		e.mu.Unlock()
	}
}

// sweep brings the number of keys down to 7/8 of the bound, so that the
// O(keys) scan is paid once per MaxKeys/8 inserts. Idle keys go first,
// then the least recently used. Concurrent inserters do not wait for a
// sweep in progress; they may overshoot the bound briefly.
func (s *memStore) sweep(now int64) {
	if !s.sweepMu.TryLock() {
		return
	}
	defer s.sweepMu.Unlock()
	target := s.maxKeys - s.maxKeys/8
	type live struct {
		key      any
		e        *entry
		lastUsed int64
	}
	var busy []live
	s.m.Range(func(k, v any) bool {
		e := v.(*entry)
		e.mu.Lock()
		if e.idle(now) {
			s.remove(k, e)
		} else {
			busy = append(busy, live{k, e, e.lastUsed})
		}
		e.mu.Unlock()
		return true
	})
	excess := s.n.Load() - target
	if excess <= 0 {
		return
	}
	slices.SortFunc(busy, func(a, b live) int {
		switch {
		case a.lastUsed < b.lastUsed:
			return -1
		case a.lastUsed > b.lastUsed:
			return 1
		}
		return 0
	})
	for _, l := range busy[:min(int64(len(busy)), excess)] {
		l.e.mu.Lock()
		if !l.e.dead {
			s.remove(l.key, l.e)
		}
		l.e.mu.Unlock()
	}
}

// remove drops e, which the caller has locked, from the map.
func (s *memStore) remove(k any, e *entry) {
	e.dead = true
	if s.m.CompareAndDelete(k, e) {
		s.n.Add(-1)
	}
}

// take implements Take. It also returns the key's entry (nil if the key
// has no state), which a Permit keeps to correct its charge without a
// second lookup.
func (s *memStore) take(key string, lim Limit, tokens int64, t time.Time, maxWait time.Duration) (Decision, *entry) {
	req, tok := rulesOf(lim)
	now := s.offset(t)
	e, full := s.lock(key, now, req.interval != 0 || (tok.interval != 0 && tokens > 0))
	if e == nil { // unlimited and never cooled down
		return Decision{OK: true}, nil
	}
	d := e.take(req, tok, tokens, now, maxWait)
	e.mu.Unlock()
	if full {
		s.sweep(now)
	}
	return d, e
}

// take is memStore.take on the locked entry.
func (e *entry) take(req, tok rule, tokens, now int64, maxWait time.Duration) (d Decision) {
	e.lastUsed = now
	if e.cooldown > now {
		d.Wait, d.Cause = time.Duration(e.cooldown-now), CauseCooldown
	}
	if w := time.Duration(req.wait(e.reqTAT, now, 1)); w > d.Wait {
		d.Wait, d.Cause = w, CauseRequests
	}
	if w := time.Duration(tok.wait(e.tokTAT, now, tokens)); w > d.Wait {
		d.Wait, d.Cause = w, CauseTokens
	}
	if d.Wait > max(maxWait, 0) {
		return d
	}
	d.OK = true
	e.reqTAT = req.charge(e.reqTAT, now, 1)
	e.tokTAT = tok.charge(e.tokTAT, now, tokens)
	return d
}

// adjust implements Adjust. e, if not nil, is the key's entry as take
// returned it; it is used if it is still live.
func (s *memStore) adjust(key string, e *entry, lim Limit, requests, tokens int64, t time.Time) {
	req, tok := rulesOf(lim)
	if req.interval == 0 {
		requests = 0
	}
	if tok.interval == 0 {
		tokens = 0
	}
	if requests == 0 && tokens == 0 {
		return
	}
	now := s.offset(t)
	full := false
	if e != nil {
		e.mu.Lock()
		if e.dead {
			e.mu.Unlock()
			e = nil
		}
	}
	if e == nil {
		// Giving back to a key with no state is a no-op: its buckets are full.
		if e, full = s.lock(key, now, requests > 0 || tokens > 0); e == nil {
			return
		}
	}
	e.reqTAT = req.charge(e.reqTAT, now, requests)
	e.tokTAT = tok.charge(e.tokTAT, now, tokens)
	e.lastUsed = now
	e.mu.Unlock()
	if full {
		s.sweep(now)
	}
}

func (s *memStore) setCooldown(key string, until, t time.Time) {
	now, u := s.offset(t), s.offset(until)
	if u <= now {
		return
	}
	e, full := s.lock(key, now, true)
	e.cooldown = max(e.cooldown, u)
	e.lastUsed = now
	e.mu.Unlock()
	if full {
		s.sweep(now)
	}
}

// Take implements Store.
func (s *memStore) Take(_ context.Context, key string, lim Limit, tokens int64, now time.Time, maxWait time.Duration) (Decision, error) {
	d, _ := s.take(key, lim, tokens, now, maxWait)
	return d, nil
}

// Adjust implements Store.
func (s *memStore) Adjust(_ context.Context, key string, lim Limit, requests, tokens int64, now time.Time) error {
	s.adjust(key, nil, lim, requests, tokens, now)
	return nil
}

// SetCooldown implements Store.
func (s *memStore) SetCooldown(_ context.Context, key string, until time.Time) error {
	s.setCooldown(key, until, time.Now())
	return nil
}
