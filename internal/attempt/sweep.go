package attempt

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// A sweeper cancels attempt contexts whose timeout has passed. Nearly
// every attempt ends long before its timeout, so arming and disarming
// must be cheap and firing need not be: an attempt joins a shard's list
// (a lock and two pointer writes, no clock read: the loop has the
// attempt's start) and leaves it when it ends. Each shard has one
// time.AfterFunc timer, set for the earliest deadline it has seen and
// not moved when attempts leave; when it fires it cancels the attempts
// past their deadline and sets itself for the earliest of those left, or
// stays idle when none is. With steady traffic a shard's timer is
// therefore set about once per timeout rather than twice per attempt, and
// nothing runs at rest: the timer starts no goroutine until it fires.
//
// Precision: an attempt is never cancelled before its timeout, and
// normally within sweepSlack after it (more when the process is too busy
// to run the timer on time); the timeouts it serves are hundreds of
// milliseconds at least by default (failover's MinAttemptTimeout).
// A sweep walks its shard's whole list, holding its lock: its cost is the
// shard's attempts in flight, paid about once per timeout while attempts
// end in time, and at most once per sweepSlack while many time out.
type sweeper struct {
	epoch  time.Time // deadlines are ns since then; it has a monotonic reading
	shards []shard
}

// sweepSlack batches expiries: a shard's timer is set this long after the
// earliest deadline, so that attempts whose deadlines fall within it are
// cancelled by one sweep.
const sweepSlack = time.Millisecond

// entryState is where an attempt context stands in its shard.
type entryState uint8

const (
	entryOut   entryState = iota // not in a list
	entryIn                      // in the list, its timeout armed
	entryFired                   // taken out by a sweep, which cancels it
)

type shard struct {
	sw   *sweeper
	mu   sync.Mutex
	head *attemptContext // a list through prev and next
	t    *time.Timer     // made by the first arm, so in its caller's bubble, if any
	at   int64           // when t fires, ns since the epoch; 0 while idle
	_    [64]byte        // keeps shards off each other's cache lines
}

// deadlines is the process's sweeper, used outside testing/synctest
// bubbles.
var deadlines = newSweeper(time.Now(), runtime.GOMAXPROCS(0))

// newSweeper returns a sweeper whose deadlines count from epoch (a clock
// reading with its monotonic part) with about one shard per processor.
func newSweeper(epoch time.Time, procs int) *sweeper {
	n := 1
	for n < procs && n < 64 {
		n *= 2
	}
	sw := &sweeper{epoch: epoch, shards: make([]shard, n)}
	for i := range sw.shards {
		sw.shards[i].sw = sw
	}
	return sw
}

// add arms c's timeout: d after now, a clock reading taken after epoch.
// The shard is random (the runtime's per-thread generator), so that
// concurrent attempts rarely share a lock and no counter is shared.
func (sw *sweeper) add(c *attemptContext, now time.Time, d time.Duration) {
	s := &sw.shards[rand.Uint32()&uint32(len(sw.shards)-1)]
	nowNs := int64(now.Sub(sw.epoch))
	// Saturated, so that a timeout of centuries is not one in the past.
	c.when = nowNs + min(int64(d), math.MaxInt64-int64(sweepSlack)-nowNs)
	s.mu.Lock()
	c.shard, c.entry = s, entryIn
	c.next = s.head
	if s.head != nil {
		s.head.prev = c
	}
	s.head = c
	if s.at == 0 || c.when+int64(sweepSlack) < s.at {
		s.arm(c.when+int64(sweepSlack), nowNs)
	}
	s.mu.Unlock()
}

// arm sets s's timer for at; now is the time in ns since the epoch. s.mu
// is held.
func (s *shard) arm(at, now int64) {
	s.at = at
	d := time.Duration(at - now)
	if s.t == nil {
		s.t = time.AfterFunc(d, s.sweep)
		return
	}
	s.t.Reset(d)
}

// remove disarms c's timeout and reports whether a sweep took c first
// (then that sweep cancels it, if it has not yet).
func (s *shard) remove(c *attemptContext) (fired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.entry != entryIn {
		return c.entry == entryFired
	}
	s.unlink(c)
	c.entry = entryOut
	return false
}

// unlink takes c out of s's list. s.mu is held.
func (s *shard) unlink(c *attemptContext) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		s.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
}

// sweep is s's timer callback: it takes the attempts past their deadline
// out of the list, sets the timer for the earliest deadline left, and
// cancels those it took out once the lock is released.
func (s *shard) sweep() {
	var expired []*attemptContext
	s.mu.Lock()
	now := int64(time.Since(s.sw.epoch))
	next := int64(0)
	for c := s.head; c != nil; {
		n := c.next
		if c.when <= now {
			s.unlink(c)
			c.entry = entryFired
			expired = append(expired, c)
		} else if next == 0 || c.when < next {
			next = c.when
		}
		c = n
	}
	if next != 0 {
		s.arm(next+int64(sweepSlack), now)
	} else {
		s.at = 0
	}
	s.mu.Unlock()
	for _, c := range expired {
		c.expire()
	}
}
