package attempt

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
)

func instant(context.Context, *sturdy.Endpoint) (int, error) { return 1, nil }

// A hedged call whose first attempt wins before the delay leaves its call
// state and timer to the next call: what remains is the first attempt's
// cancellable context, one allocation.
func TestHedgedCallIsReused(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	s := &Spec{Hedge: &hedgePol{delay: time.Hour, maxH: 1}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		v, w, err := RunErr(ctx, s, instant, nil)
		if err != nil || v != 1 {
			t.Fatalf("got %v, %v", v, err)
		}
		w.Release()
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per hedged call that did not hedge, want ≤ 1 (the attempt's context)", allocs)
	}
}

// A reused call still hedges: its timer, stopped by the previous call, is
// armed again and runs the hedge.
func TestReusedCallHedges(t *testing.T) {
	s := &Spec{Picker: fakepick.New("a", "b"), Hedge: &hedgePol{delay: time.Millisecond, maxH: 1}}
	ctx := context.Background()
	for range 20 { // fill the pool
		_, w, err := RunErr(ctx, s, instant, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Release()
	}
	for range 5 {
		v, w, err := RunErr(ctx, s, func(ctx context.Context, ep *sturdy.Endpoint) (int, error) {
			if ep.Name == "a" { // the first attempt stalls until it loses
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return 2, nil
		}, nil)
		if err != nil || v != 2 || w.Info.Endpoint.Name != "b" || w.Info.Kind != sturdy.Hedge {
			t.Fatalf("got %v from %+v, %v; want 2 from the hedge on b", v, w.Info, err)
		}
		w.Release()
	}
}

// Calls in a testing/synctest bubble never take a pooled call: its timer
// runs on real time and would not fire on the bubble's clock.
func TestBubbleDoesNotTakePooledCalls(t *testing.T) {
	// Legitimate pool entries, made outside the bubble: zeroed calls
	// whose stopped timers run their own fire.
	outside := make([]*hedgedCall[string], 64)
	for i := range outside {
		c := new(hedgedCall[string])
		c.timer = time.AfterFunc(time.Hour, c.fire)
		c.timer.Stop()
		outside[i] = c
	}
	synctest.Test(t, func(t *testing.T) {
		if !bubbled(time.Now()) {
			t.Fatal("bubbled(time.Now()) is false inside a bubble")
		}
		pool := callPool[string]()
		for _, c := range outside {
			pool.Put(c) // on this goroutine's P, where Get looks first
		}
		s := &Spec{Picker: fakepick.New("a", "b"), Hedge: &hedgePol{delay: 100 * time.Millisecond, maxH: 1}}
		srv := &server{by: map[string]behaviour{"a": {delay: time.Second}, "b": {delay: 20 * time.Millisecond}}}
		start := time.Now()
		v, w, err := Run(context.Background(), s, srv.fn, srv.cleanup)
		if err != nil || v != "b:success" {
			t.Fatalf("got %q, %v; want the hedge on b to win", v, err)
		}
		w.Release()
		if el := time.Since(start); el != 120*time.Millisecond {
			t.Fatalf("took %v on the bubble's clock, want 120ms", el)
		}
	})
	if bubbled(time.Now()) {
		t.Fatal("bubbled(time.Now()) is true outside a bubble")
	}
}
