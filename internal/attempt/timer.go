package attempt

import (
	"context"
	"sync"
	"time"
)

// Timer cancels a context with a cause when its time runs out. Nearly
// every attempt ends before its timeout, so timers are recycled: arming
// one costs neither a time.Timer nor a callback, only a Reset.
type Timer struct {
	t      *time.Timer
	mu     sync.Mutex
	cancel context.CancelCauseFunc // nil once fired or stopped
	cause  error
	pooled bool
}

var timers = sync.Pool{New: func() any {
	tm := &Timer{pooled: true}
	tm.t = time.AfterFunc(time.Hour, tm.fire)
	tm.t.Stop()
	return tm
}}

// StartTimer arms a timer that calls cancel(cause) after d. The start
// time now (zero: read the clock) decides whether the timer may come from
// the pool: in a testing/synctest bubble a timer must be the bubble's
// own, so one is made for the call.
func StartTimer(now time.Time, d time.Duration, cancel context.CancelCauseFunc, cause error) *Timer {
	if now.IsZero() {
		now = time.Now()
	}
	var tm *Timer
	if bubbled(now) {
		tm = new(Timer)
		tm.cancel, tm.cause = cancel, cause
		tm.t = time.AfterFunc(d, tm.fire)
		return tm
	}
	tm = timers.Get().(*Timer)
	tm.mu.Lock()
	tm.cancel, tm.cause = cancel, cause
	tm.mu.Unlock()
	tm.t.Reset(d)
	return tm
}

func (tm *Timer) fire() {
	tm.mu.Lock()
	cancel, cause := tm.cancel, tm.cause
	tm.cancel, tm.cause = nil, nil
	tm.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

// Stop disarms the timer and reports whether it had fired (or was
// firing). It is a no-op returning false on a nil Timer; call it exactly
// once per StartTimer. A timer that did not fire goes back to the pool;
// one that fired may still be running its callback and is left to the
// garbage collector.
func (tm *Timer) Stop() (fired bool) {
	if tm == nil {
		return false
	}
	if !tm.t.Stop() {
		return true
	}
	tm.mu.Lock()
	tm.cancel, tm.cause = nil, nil
	tm.mu.Unlock()
	if tm.pooled {
		timers.Put(tm)
	}
	return false
}
