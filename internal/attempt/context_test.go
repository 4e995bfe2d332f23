package attempt

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
)

func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// The sweeper cancels an attempt once its deadline has passed, within
// sweepSlack, never before.
func TestSweeperCancelsAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := newSweeper(time.Now(), 4)
		c := newAttemptContext(context.Background())
		start := time.Now()
		sw.add(c, start, time.Second)
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		require.NoError(t, c.Err(), "cancelled early")
		time.Sleep(sweepSlack + time.Nanosecond)
		synctest.Wait()
		require.ErrorIs(t, c.Err(), context.Canceled)
		require.True(t, isDone(c))
		require.Same(t, ErrAttemptTimeout, c.causeOf())
		require.True(t, c.shard.remove(c), "remove after the sweep must say it fired")
		require.Zero(t, c.shard.at, "nothing left: the timer stays idle")
	})
}

// An attempt that leaves before its deadline is never cancelled, and the
// timer, once it has fired for nothing, stays idle: nothing runs at rest.
func TestSweeperRemoveBeforeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := newSweeper(time.Now(), 1)
		c := newAttemptContext(context.Background())
		sw.add(c, time.Now(), time.Second)
		require.False(t, c.shard.remove(c))
		require.False(t, c.shard.remove(c), "a second remove is a no-op")
		time.Sleep(time.Hour)
		synctest.Wait()
		require.NoError(t, c.Err())
		require.Nil(t, sw.shards[0].head)
		require.Zero(t, sw.shards[0].at)
	})
}

// Attempts with different deadlines in one shard are each cancelled at
// their own; the timer moves forward for a later one and back for an
// earlier one.
func TestSweeperMixedDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := newSweeper(time.Now(), 1)
		start := time.Now()
		ds := []time.Duration{3 * time.Second, time.Second, 2 * time.Second, 500 * time.Millisecond}
		cs := make([]*attemptContext, len(ds))
		for i, d := range ds {
			cs[i] = newAttemptContext(context.Background())
			sw.add(cs[i], start, d)
		}
		stopped := cs[2]
		require.False(t, stopped.shard.remove(stopped))
		for _, at := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second} {
			time.Sleep(start.Add(at + sweepSlack).Sub(time.Now()))
			synctest.Wait()
			for i, d := range ds {
				want := d <= at && cs[i] != stopped
				assert.Equal(t, want, cs[i].Err() != nil, "at %v: attempt with timeout %v", at, d)
			}
		}
		require.Nil(t, sw.shards[0].head)
	})
}

// A timeout too long to add to the clock reading is not one in the past.
func TestSweeperLongTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := newSweeper(time.Now(), 1)
		c := newAttemptContext(context.Background())
		sw.add(c, time.Now().Add(time.Hour), math.MaxInt64)
		time.Sleep(time.Hour)
		synctest.Wait()
		require.NoError(t, c.Err())
		require.False(t, c.shard.remove(c))
	})
}

// Many attempts on many goroutines against the process's sweeper, in
// real time: those that outlive their (short) timeout are cancelled with
// ErrAttemptTimeout, the others never are.
func TestSweeperConcurrentAttempts(t *testing.T) {
	const workers, each = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c := newAttemptContext(context.Background())
				if (w+i)%10 == 0 {
					c.startTimeout(time.Now(), time.Millisecond)
					<-c.Done()
					if !c.stopTimeout() || c.causeOf() != ErrAttemptTimeout {
						errs <- errors.New("an expired attempt did not report its timeout")
						return
					}
					continue
				}
				c.startTimeout(time.Now(), time.Hour)
				if c.stopTimeout() || c.Err() != nil {
					errs <- errors.New("an attempt was cancelled before its timeout")
					return
				}
				c.cancel(causeRelease)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range deadlines.shards {
		s := &deadlines.shards[i]
		s.mu.Lock()
		head := s.head
		s.mu.Unlock()
		assert.Nil(t, head, "shard %d keeps attempts that left", i)
	}
}

// Inside a testing/synctest bubble the timeout is a timer of the
// bubble's, exact in fake time.
func TestAttemptContextTimeoutInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := attemptCtx(context.Background(), false, time.Second, time.Now())
		require.NotNil(t, c)
		require.Nil(t, c.shard, "a bubble's attempt must not join the process's sweeper")
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		require.NoError(t, c.Err())
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Same(t, ErrAttemptTimeout, c.causeOf())
		require.True(t, c.stopTimeout())
	})
}

func TestAttemptCtxWhenNeeded(t *testing.T) {
	now := time.Now()
	bg := context.Background()
	near, cancel := context.WithDeadline(bg, now.Add(time.Second))
	defer cancel()
	require.Nil(t, attemptCtx(bg, false, 0, now), "no timeout, not own: the caller's context")
	require.Nil(t, attemptCtx(near, false, time.Second, now),
		"the caller's deadline comes no later than the timeout: it bounds the attempt")
	c := attemptCtx(near, true, time.Second, now)
	require.NotNil(t, c, "a hedge has a context of its own")
	require.Nil(t, c.shard, "under the caller's earlier deadline, without a timeout")
	c.cancel(causeLost)
	c = attemptCtx(near, false, time.Second-time.Millisecond, now)
	require.NotNil(t, c, "the timeout comes first")
	require.False(t, c.stopTimeout())
	c.cancel(causeRelease)
	var nilCtx *attemptContext
	require.False(t, nilCtx.stopTimeout())
	nilCtx.cancel(causeLost) // a no-op
}

// The attempt context is one allocation of the 112-byte size class: a
// field added carelessly moves it to the next.
func TestAttemptContextSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(attemptContext{}), uintptr(112))
	allocs := testing.AllocsPerRun(100, func() {
		c := attemptCtx(context.Background(), false, time.Minute, time.Now())
		c.stopTimeout()
		c.cancel(causeRelease)
	})
	require.LessOrEqual(t, allocs, 1.0)
}

type ctxKey struct{}

// An attempt context is a context.Context as the standard library's are:
// it follows its parent, keeps its values and deadline, and contexts and
// AfterFuncs derived from it end with it.
func TestAttemptContextContract(t *testing.T) {
	t.Run("parent cancelled before Done is asked", func(t *testing.T) {
		parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
		c := newAttemptContext(parent)
		require.Equal(t, "v", c.Value(ctxKey{}))
		_, ok := c.Deadline()
		require.False(t, ok)
		require.NoError(t, c.Err())
		stop := errors.New("caller stopped")
		cancel(stop)
		require.ErrorIs(t, c.Err(), context.Canceled)
		require.True(t, isDone(c))
		require.Same(t, stop, context.Cause(c))
		require.Same(t, stop, c.causeOf())
	})
	t.Run("parent cancelled while watched", func(t *testing.T) {
		parent, cancel := context.WithCancelCause(context.Background())
		c := newAttemptContext(parent)
		done := c.Done()
		require.False(t, isDone(c))
		stop := errors.New("caller stopped")
		cancel(stop)
		<-done // the watch runs on a goroutine of its own
		require.ErrorIs(t, c.Err(), context.Canceled)
		require.Same(t, stop, c.causeOf())
		require.Same(t, stop, context.Cause(c))
	})
	t.Run("parent deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c := newAttemptContext(parent)
			dl, ok := c.Deadline()
			require.True(t, ok)
			require.Equal(t, time.Now().Add(time.Second), dl)
			<-c.Done()
			require.Equal(t, time.Now(), dl)
			require.ErrorIs(t, c.Err(), context.DeadlineExceeded)
		})
	})
	t.Run("cancel ends derived contexts and stops the parent watch", func(t *testing.T) {
		parent, cancelParent := context.WithCancelCause(context.Background())
		defer cancelParent(nil)
		c := newAttemptContext(parent)
		child, cancelChild := context.WithCancel(c)
		defer cancelChild()
		ran := make(chan struct{})
		context.AfterFunc(c, func() { close(ran) })
		c.cancel(causeLost)
		require.True(t, isDone(child), "a derived context ends before cancel returns")
		require.ErrorIs(t, child.Err(), context.Canceled)
		<-ran
		require.Nil(t, c.more.watch)
		cancelParent(errors.New("later"))
		require.Same(t, errLost, c.causeOf(), "the first cancel decides")
	})
	t.Run("derived context cancelled first leaves", func(t *testing.T) {
		c := newAttemptContext(context.Background())
		child, cancelChild := context.WithCancel(c)
		cancelChild()
		require.ErrorIs(t, child.Err(), context.Canceled)
		c.mu.Lock()
		n := 0
		for a := c.more.rest; a != nil; a = a.next {
			n++
		}
		if c.more.first != nil {
			n++
		}
		c.mu.Unlock()
		require.Zero(t, n, "the derived context's func was not unregistered")
		require.NoError(t, c.Err())
		c.cancel(causeRelease)
	})
	t.Run("a stale stop unregisters nothing else", func(t *testing.T) {
		c := newAttemptContext(context.Background())
		var ranA, ranB, ranC atomic.Bool
		stopA := c.AfterFunc(func() { ranA.Store(true) })
		require.True(t, stopA(), "the first func's stop unregisters it")
		stopB := c.AfterFunc(func() { ranB.Store(true) })
		stopC := c.AfterFunc(func() { ranC.Store(true) })
		require.False(t, stopA(), "a second stop of the first func")
		require.True(t, stopB())
		require.False(t, stopB())
		c.cancel(causeRelease)
		require.False(t, ranA.Load())
		require.False(t, ranB.Load())
		require.True(t, ranC.Load(), "a func registered after a stopped one runs at cancel")
		require.False(t, stopC(), "stop after the func ran")
	})
	t.Run("AfterFunc on a cancelled context", func(t *testing.T) {
		c := newAttemptContext(context.Background())
		c.cancel(causeLost)
		ran := make(chan struct{})
		stop := context.AfterFunc(c, func() { close(ran) })
		<-ran
		require.False(t, stop())
		child, cancel := context.WithCancel(c)
		defer cancel()
		require.True(t, isDone(child))
	})
	t.Run("Err does not change once said", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		c := newAttemptContext(parent)
		cancel()
		require.ErrorIs(t, c.Err(), context.Canceled)
		c.cancel(causeTimeout) // too late: Err said the parent's already
		require.ErrorIs(t, c.Err(), context.Canceled)
		require.ErrorIs(t, c.causeOf(), context.Canceled, "the parent's cause")
		require.True(t, isDone(c))
	})
	t.Run("Done after cancel", func(t *testing.T) {
		c := newAttemptContext(context.Background())
		c.cancel(causeTimeout)
		require.True(t, isDone(c))
		require.ErrorIs(t, c.Err(), context.Canceled)
		require.Same(t, ErrAttemptTimeout, c.causeOf())
		require.ErrorIs(t, context.Cause(c), context.Canceled, "the context package cannot know the loop's cause")
	})
	t.Run("concurrent Done, AfterFunc and cancel", func(t *testing.T) {
		for range 200 {
			parent, cancelParent := context.WithCancel(context.Background())
			c := newAttemptContext(parent)
			ran := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { <-c.Done() })
			wg.Go(func() { context.AfterFunc(c, func() { close(ran) }) })
			wg.Go(func() { c.cancel(causeLost) })
			wg.Go(cancelParent)
			wg.Wait()
			<-ran
			require.Error(t, c.Err())
		}
	})
	t.Run("AfterFunc stop", func(t *testing.T) {
		c := newAttemptContext(context.Background())
		stop := c.AfterFunc(func() { t.Error("a stopped func ran") })
		require.True(t, stop())
		require.False(t, stop())
		c.cancel(causeLost)
	})
}

// An attempt whose timeout the process's sweeper fires, in real time,
// ends as the endpoint's Timeout with ErrAttemptTimeout, and the call
// goes on to the next endpoint.
func TestSequentialTimeoutBySweeper(t *testing.T) {
	s := &Spec{Retry: &timeoutRetry{d: 5 * time.Millisecond}, Op: "test"}
	start := time.Now()
	n := 0
	v, w, err := Run(context.Background(), s, func(ctx context.Context, a Info) (int, sturdy.Outcome) {
		n++
		if a.N == 1 {
			<-ctx.Done()
			return 0, sturdy.Outcome{Class: sturdy.Unavailable, Err: ctx.Err()}
		}
		return 2, sturdy.Outcome{Class: sturdy.Success}
	}, nil)
	require.NoError(t, err)
	defer w.Release()
	require.Equal(t, 2, v)
	require.Equal(t, 2, n)
	require.GreaterOrEqual(t, time.Since(start), 5*time.Millisecond)
}

// timeoutRetry allows two attempts, the first bounded by d.
type timeoutRetry struct{ d time.Duration }

func (r *timeoutRetry) MaxAttempts() int { return 2 }
func (r *timeoutRetry) AttemptTimeout(n int, last bool) time.Duration {
	if n == 1 {
		return r.d
	}
	return 0
}
func (r *timeoutRetry) Retryable(c sturdy.Class) bool              { return c == sturdy.Timeout }
func (r *timeoutRetry) Backoff(int) time.Duration                  { return 0 }
func (r *timeoutRetry) MaxRetryAfterWait() time.Duration           { return 0 }
func (r *timeoutRetry) SameEndpoint() bool                         { return true }
func (r *timeoutRetry) RetrySame(sturdy.Attempt) bool              { return true }
func (r *timeoutRetry) Deposit(time.Time)                          {}
func (r *timeoutRetry) AllowRetry(time.Time) bool                  { return true }
func (r *timeoutRetry) Observe(sturdy.AttemptKind, sturdy.Outcome) {}

// BenchmarkAttemptContext compares what bounding an attempt costs: the
// attempt context with the sweeper against context.WithCancelCause with a
// pooled Timer (what the loop used before), each armed, stopped before
// its time and released. The sub-benchmarks alternate with -count.
//
//	go test -run '^$' -bench AttemptContext -benchmem -count 10 ./internal/attempt
func BenchmarkAttemptContext(b *testing.B) {
	bg := context.Background()
	b.Run("WithCancelCause+Timer", func(b *testing.B) {
		b.ReportAllocs()
		now := time.Now()
		for b.Loop() {
			ctx, cancel := context.WithCancelCause(bg)
			tm := StartTimer(now, time.Minute, cancel, ErrAttemptTimeout)
			o := sturdy.Outcome{Latency: 1}
			classify(ctx, &o, now, tm.Stop())
			cancel(errReleased)
		}
	})
	b.Run("attemptContext", func(b *testing.B) {
		b.ReportAllocs()
		now := time.Now()
		for b.Loop() {
			c := attemptCtx(bg, false, time.Minute, now)
			o := sturdy.Outcome{Latency: 1}
			classify(bg, &o, now, c.stopTimeout())
			c.cancel(causeRelease)
		}
	})
	b.Run("parallel/WithCancelCause+Timer", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := time.Now()
			for pb.Next() {
				ctx, cancel := context.WithCancelCause(bg)
				tm := StartTimer(now, time.Minute, cancel, ErrAttemptTimeout)
				o := sturdy.Outcome{Latency: 1}
				classify(ctx, &o, now, tm.Stop())
				cancel(errReleased)
			}
		})
	})
	b.Run("parallel/attemptContext", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := time.Now()
			for pb.Next() {
				c := attemptCtx(bg, false, time.Minute, now)
				o := sturdy.Outcome{Latency: 1}
				classify(bg, &o, now, c.stopTimeout())
				c.cancel(causeRelease)
			}
		})
	})
}
