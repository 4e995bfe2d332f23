package attempt

import (
	"context"
	"slices"
	"sync"
	"time"
)

// attemptContext is the context of an attempt that may end on its own: a
// hedge that lost, or an attempt past its timeout. It is one allocation,
// where context.WithCancelCause is two (the cancelCtx and its cancel
// func) and a timeout was a pooled runtime timer on top; the timeout is an
// entry in the deadline sweeper (sweep.go), which costs two short
// critical sections instead of a timer's Reset and Stop. Measured by
// BenchmarkAttemptContext (context_test.go) against the WithCancelCause
// and pooled-timer pair it replaces.
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
// was cancelled by its own timeout or by the loop is context.Canceled, as
// the cause cannot be told to the context package; the loop reads it
// with cause, and classifies a timeout by the stop result.
type attemptContext struct {
	context.Context // the parent

	mu    sync.Mutex
	done  chan struct{} // made by Done
	err   error         // set by cancel, or copied from the parent
	cause error         // why cancel was called
	more  *ctxMore      // what few attempts need, made when one does

	// The attempt's timeout, as an entry in a deadline sweeper shard.
	when       int64 // deadline, in ns since the sweeper's epoch
	prev, next *attemptContext
	shard      *shard
	state      entryState // guarded by shard.mu
}

// ctxMore is the part of an attempt context that a transport which waits
// on Done or derives contexts needs, and a timeout in a testing/synctest
// bubble; kept apart so that the attempt context is small for the rest.
type ctxMore struct {
	watch func() bool // stops the parent watch Done started, if any
	funcs []afterFunc // registered by AfterFunc, run by cancel
	seq   int         // numbers funcs for their stop
	timer *time.Timer // the timeout, in a testing/synctest bubble
}

type afterFunc struct {
	id int
	f  func()
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
	if c.err == nil {
		if err := c.Context.Err(); err != nil {
			c.err, c.cause = err, context.Cause(c.Context)
		} else if c.Context.Done() != nil {
			// The callback runs on a goroutine of its own, briefly, once
			// the parent is done; cancel stops the watch.
			c.extra().watch = context.AfterFunc(c.Context, c.parentDone)
		}
	}
	if c.err != nil {
		close(c.done)
	}
	return c.done
}

func (c *attemptContext) parentDone() {
	c.cancelWith(c.Context.Err(), context.Cause(c.Context))
}

// Err implements context.Context. Until something waits on Done, the
// parent's state is this context's, read when asked.
func (c *attemptContext) Err() error {
	c.mu.Lock()
	err, watched := c.err, c.done != nil
	c.mu.Unlock()
	if err != nil || watched {
		return err
	}
	return c.Context.Err()
}

// AfterFunc arranges for f to run once c is cancelled (at once, on a
// goroutine of its own, if it is already); stop unregisters it and
// reports whether it did so before f was started. The context package
// uses it for contexts derived from c.
func (c *attemptContext) AfterFunc(f func()) (stop func() bool) {
	c.Done() // watch the parent: f must run when it is done, too
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	m := c.extra()
	m.seq++
	id := m.seq
	m.funcs = append(m.funcs, afterFunc{id, f})
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.IndexFunc(m.funcs, func(a afterFunc) bool { return a.id == id })
		if i < 0 {
			return false
		}
		m.funcs = slices.Delete(m.funcs, i, i+1)
		return true
	}
}

// cancel cancels c with cause (the first call wins) and stops watching
// its parent. It is a no-op on a nil context.
func (c *attemptContext) cancel(cause error) {
	if c != nil {
		c.cancelWith(context.Canceled, cause)
	}
}

func (c *attemptContext) cancelWith(err, cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err, c.cause = err, cause
	if c.done != nil {
		close(c.done)
	}
	var watch func() bool
	var funcs []afterFunc
	if m := c.more; m != nil {
		watch, funcs = m.watch, m.funcs
		m.watch, m.funcs = nil, nil
	}
	c.mu.Unlock()
	if watch != nil {
		watch()
	}
	// The funcs are the context package's (they cancel derived
	// contexts), run here as a cancelCtx cancels its children: before
	// cancel returns.
	for _, a := range funcs {
		a.f()
	}
}

// causeOf is the cause c was cancelled with by cancel, its parent's cause
// if the parent ended it, or nil while it is live.
func (c *attemptContext) causeOf() error {
	if c.Err() == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		return c.cause
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
		c.extra().timer = t
		c.mu.Unlock()
		return
	}
	deadlines.add(c, now, d)
}

func (c *attemptContext) expire() { c.cancel(ErrAttemptTimeout) }

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
	var t *time.Timer
	if c.more != nil {
		t = c.more.timer
	}
	c.mu.Unlock()
	return t != nil && !t.Stop()
}

// extra returns c.more, made if need be. c.mu is held.
func (c *attemptContext) extra() *ctxMore {
	if c.more == nil {
		c.more = new(ctxMore)
	}
	return c.more
}
