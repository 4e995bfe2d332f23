package attempt

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// attemptContext is the context of an attempt that may end on its own: a
// hedge that lost, or an attempt past its timeout. It is one allocation
// of 112 bytes, where context.WithCancelCause is two (the cancelCtx and
// its cancel func) and the timeout was a pooled runtime timer on top; the
// timeout is an entry in the deadline sweeper (sweep.go), two short
// critical sections instead of a timer's Reset and Stop, and cancelling
// it takes no lock unless something waits on Done. Measured against the
// WithCancelCause and pooled Timer pair it replaces by
// BenchmarkAttemptTimeoutCPU and BenchmarkAttemptContext.
//
// It keeps the context.Context contract: Deadline and Value are the
// parent's; Done is closed, and Err set, when the attempt is cancelled or
// the parent is done. The parent is watched only once something asks for
// Done (until then Err reads the parent's Err), so an attempt whose
// transport never waits on Done pays nothing for it. It implements
// AfterFunc(func()) func() bool, which the context package looks for, so
// that contexts derived from it are cancelled with it and start no
// goroutine of their own.
//
// What differs from a cancelCtx: context.Cause of an attempt context that
// the loop cancelled (its timeout, a lost hedge, the winner's release) is
// context.Canceled, as a custom context cannot tell the context package
// its cause; the loop reads it with causeOf, and classifies a timeout by
// what stopTimeout reports. When the parent ended it, context.Cause is
// the parent's cause, as for a cancelCtx.
type attemptContext struct {
	context.Context // the parent

	// The fields are in the order that packs them into 104 bytes (the
	// 112-byte size class; TestAttemptContextSize).
	state     atomic.Uint32 // why it ended (an endCause) | watched
	mu        sync.Mutex    // guards done, closed, firstUsed and more
	closed    bool          // done is closed
	entry     entryState    // in the sweeper: guarded by shard.mu
	firstUsed bool          // more.first has held a func (it never holds another)
	done      chan struct{} // made by Done
	// more is what a transport that waits on Done or derives contexts
	// (net/http's and grpc-go's both do) needs: in the context's own
	// allocation, not one more of its own.
	more ctxMore

	// The attempt's timeout, as an entry in a deadline sweeper shard.
	when       int64 // deadline, in ns since the sweeper's epoch
	prev, next *attemptContext
	shard      *shard
}

// endCause says why an attempt context ended.
type endCause uint32

const (
	live         endCause = iota
	causeRelease          // the winner was released: errReleased
	causeLost             // another attempt won: errLost
	causeAborted          // another attempt failed for good: errAborted
	causeTimeout          // the attempt timed out: ErrAttemptTimeout
	causeParent           // the parent is done: its Err and Cause

	causeMask endCause = 0xff
	watched   uint32   = 1 << 8 // Done was called: done exists, the parent is watched
)

func (w endCause) err() error {
	switch w {
	case causeRelease:
		return errReleased
	case causeLost:
		return errLost
	case causeAborted:
		return errAborted
	case causeTimeout:
		return ErrAttemptTimeout
	}
	return nil
}

func causeIn(s uint32) endCause { return endCause(s) & causeMask }

// ctxMore is the part of an attempt context that a transport which waits
// on Done or derives contexts needs, and a timeout in a testing/synctest
// bubble.
type ctxMore struct {
	watch func() bool // stops the parent watch Done started, if any
	// The funcs registered by AfterFunc, run by cancel. The first ever
	// registered is in first (nil once stopped or run), so that the one
	// derived context a transport makes costs no allocation of its own;
	// the others are in a list whose nodes are their identity for stop.
	first func()
	rest  *afterNode
	timer *time.Timer // the timeout, in a testing/synctest bubble
}

// afterNode is a func registered by AfterFunc after the first.
type afterNode struct {
	f    func()
	next *afterNode
}

// newAttemptContext returns a live context under parent.
func newAttemptContext(parent context.Context) *attemptContext {
	return &attemptContext{Context: parent}
}

// Done implements context.Context. The first call starts watching the
// parent, if it can be done.
func (c *attemptContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	// Once watched is set, cancel closes done (under c.mu); before, it
	// leaves that to here.
	s := c.state.Or(watched)
	if causeIn(s) == live {
		if c.Context.Err() != nil {
			c.end(causeParent)
		} else if c.Context.Done() != nil {
			// The callback runs on a goroutine of its own, briefly, once
			// the parent is done; cancel stops the watch.
			c.more.watch = context.AfterFunc(c.Context, c.parentDone)
			return c.done
		}
	}
	if causeIn(c.state.Load()) != live {
		c.closed = true
		close(c.done)
	}
	return c.done
}

func (c *attemptContext) parentDone() { c.cancel(causeParent) }

// Err implements context.Context. Until something waits on Done, the
// parent's state is this context's, read when asked.
func (c *attemptContext) Err() error {
	s := c.state.Load()
	switch w := causeIn(s); {
	case w == causeParent, w == live && s&watched == 0:
		return c.Context.Err()
	case w == live:
		return nil
	}
	return context.Canceled
}

// AfterFunc arranges for f to run once c is cancelled (at once, on a
// goroutine of its own, if it is already); stop unregisters it and
// reports whether it did so before f was started. The context package
// uses it for contexts derived from c.
func (c *attemptContext) AfterFunc(f func()) (stop func() bool) {
	c.Done() // watch the parent: f must run when it is done, too
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	// The stop funcs capture c alone (c.more, not a pointer into c):
	// a smaller closure.
	if !c.firstUsed {
		// The slot is used once only: its stop cannot unregister a
		// later func by mistake.
		c.firstUsed, c.more.first = true, f
		c.mu.Unlock()
		return func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			ok := c.more.first != nil
			c.more.first = nil
			return ok
		}
	}
	n := &afterNode{f: f, next: c.more.rest}
	c.more.rest = n
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for p := &c.more.rest; *p != nil; p = &(*p).next {
			if *p == n {
				*p = n.next
				return true
			}
		}
		return false
	}
}

// end records why c ended, unless it has already, and reports the state
// it left. An unwatched context whose parent is done has said so through
// Err already: it ends with the parent's cause, so that Err does not
// change.
func (c *attemptContext) end(why endCause) (s uint32, ok bool) {
	for {
		s = c.state.Load()
		if causeIn(s) != live {
			return s, false
		}
		w := why
		if s&watched == 0 && c.Context.Err() != nil {
			w = causeParent
		}
		if c.state.CompareAndSwap(s, s|uint32(w)) {
			return s | uint32(w), true
		}
	}
}

// cancel ends c (the first call decides why), closes Done, stops
// watching the parent and cancels the contexts derived from c. It is a
// no-op on a nil context.
func (c *attemptContext) cancel(why endCause) {
	if c == nil {
		return
	}
	s, ok := c.end(why)
	if !ok || s&watched == 0 {
		return // nothing waits: no channel, no watch, no derived context
	}
	c.mu.Lock()
	if c.done != nil && !c.closed {
		c.closed = true
		close(c.done)
	}
	m := &c.more
	watch, first, rest := m.watch, m.first, m.rest
	m.watch, m.first, m.rest = nil, nil, nil
	c.mu.Unlock()
	if watch != nil {
		watch()
	}
	// The funcs are the context package's (they cancel derived
	// contexts), run here as a cancelCtx cancels its children: before
	// cancel returns.
	if first != nil {
		first()
	}
	for n := rest; n != nil; n = n.next {
		n.f()
	}
}

// causeOf is why c ended: the loop's sentinel error, the parent's cause
// if the parent ended it, or nil while it is live.
func (c *attemptContext) causeOf() error {
	if c.Err() == nil {
		return nil
	}
	if w := causeIn(c.state.Load()); w != live && w != causeParent {
		return w.err()
	}
	return context.Cause(c.Context)
}

// String names the context for debugging, as the context package's own do.
func (c *attemptContext) String() string { return "sturdy attempt context" }

// startTimeout arms c's timeout: c is cancelled with ErrAttemptTimeout d
// after now (zero: read the clock) unless stopTimeout comes first.
// Outside a testing/synctest bubble the deadline sweeper does it;
// inside, a timer of the bubble's own, so that fake time drives it.
func (c *attemptContext) startTimeout(now time.Time, d time.Duration) {
	if now.IsZero() {
		now = time.Now()
	}
	if bubbled(now) {
		t := time.AfterFunc(d, c.expire)
		c.mu.Lock()
		c.more.timer = t
		c.mu.Unlock()
		return
	}
	deadlines.add(c, now, d)
}

func (c *attemptContext) expire() { c.cancel(causeTimeout) }

// stopTimeout disarms c's timeout and reports whether it had fired (or
// was firing). It is a no-op returning false on a nil context or one
// without a timeout; call it at most once per startTimeout.
func (c *attemptContext) stopTimeout() (fired bool) {
	switch {
	case c == nil:
		return false
	case c.shard != nil:
		return c.shard.remove(c)
	}
	c.mu.Lock()
	t := c.more.timer
	c.mu.Unlock()
	return t != nil && !t.Stop()
}
