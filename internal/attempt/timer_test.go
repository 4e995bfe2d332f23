package attempt

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

var errTestCause = errors.New("test cause")

func TestTimerFiresWithCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		tm := StartTimer(time.Now(), time.Second, cancel, errTestCause)
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		require.NoError(t, ctx.Err(), "fired early")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Same(t, errTestCause, context.Cause(ctx))
		require.True(t, tm.Stop(), "Stop after firing must say so")
	})
}

func TestTimerStoppedNeverFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		tm := StartTimer(time.Now(), time.Second, cancel, errTestCause)
		require.False(t, tm.Stop())
		time.Sleep(time.Hour)
		synctest.Wait()
		require.NoError(t, ctx.Err())
	})
}

// A recycled timer must never call the cancel of the attempt that armed
// it before: Stop clears it before the timer goes back to the pool.
func TestTimerRecycledForgetsCancel(t *testing.T) {
	var first, second int
	tm := StartTimer(time.Now(), time.Hour, func(error) { first++ }, errTestCause)
	require.False(t, tm.Stop())
	require.Nil(t, tm.cancel)
	tm2 := StartTimer(time.Now(), time.Hour, func(error) { second++ }, errTestCause)
	tm2.fire() // as the runtime would when the hour is up
	require.Equal(t, 0, first, "the earlier attempt's cancel ran")
	require.Equal(t, 1, second)
	tm2.fire()
	require.Equal(t, 1, second, "a timer fires once")
	tm2.t.Stop()
}

func TestTimerNilStop(t *testing.T) {
	var tm *Timer
	require.False(t, tm.Stop())
}

func BenchmarkTimer(b *testing.B) {
	_, cancel := context.WithCancelCause(context.Background())
	now := time.Now()
	b.Run("pooled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			StartTimer(now, time.Minute, cancel, errTestCause).Stop()
		}
	})
	b.Run("AfterFunc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			time.AfterFunc(time.Minute, func() { cancel(errTestCause) }).Stop()
		}
	})
}
