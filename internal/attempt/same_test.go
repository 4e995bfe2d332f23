package attempt

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
)

// alternating answers like a lone server that fails every second request
// it receives.
type alternating struct {
	n     atomic.Int64
	fail  sturdy.Outcome
	calls []string
}

func (s *alternating) fn(_ context.Context, a Info) (string, sturdy.Outcome) {
	s.calls = append(s.calls, a.Endpoint.Name)
	if s.n.Add(1)%2 == 1 {
		return "", s.fail
	}
	return "ok", sturdy.Outcome{Class: sturdy.Success}
}

func TestSameEndpointRetry(t *testing.T) {
	tests := []struct {
		name      string
		same      bool
		fail      sturdy.Outcome
		eps       []string
		wantOK    bool
		wantCalls []string
	}{
		{"lone endpoint, unavailable: retried there", true, sturdy.Outcome{Class: sturdy.Unavailable}, []string{"a"}, true, []string{"a", "a"}},
		{"lone endpoint, timeout: retried there", true, sturdy.Outcome{Class: sturdy.Timeout}, []string{"a"}, true, []string{"a", "a"}},
		{"lone endpoint, overloaded without Retry-After", true, sturdy.Outcome{Class: sturdy.Overloaded}, []string{"a"}, true, []string{"a", "a"}},
		{"off: no retry", false, sturdy.Outcome{Class: sturdy.Unavailable}, []string{"a"}, false, []string{"a"}},
		{"a refused credential is not retried there", true, sturdy.Outcome{Class: sturdy.Auth}, []string{"a"}, false, []string{"a"}},
		{"Retry-After is not hammered", true, sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Minute}, []string{"a"}, false, []string{"a"}},
		{"an untried endpoint comes first", true, sturdy.Outcome{Class: sturdy.Unavailable}, []string{"a", "b"}, true, []string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &alternating{fail: tc.fail}
			r := newRetry(3)
			r.same = tc.same
			s := &Spec{Picker: fakepick.New(tc.eps...), Retry: r, Op: "test"}
			v, w, err := Run(context.Background(), s, srv.fn, nil)
			w.Release()
			if got := err == nil && v == "ok"; got != tc.wantOK {
				t.Fatalf("served = %v (v %q, err %v), want %v", got, v, err, tc.wantOK)
			}
			if len(srv.calls) != len(tc.wantCalls) {
				t.Fatalf("calls = %v, want %v", srv.calls, tc.wantCalls)
			}
			for i := range srv.calls {
				if srv.calls[i] != tc.wantCalls[i] {
					t.Fatalf("calls = %v, want %v", srv.calls, tc.wantCalls)
				}
			}
		})
	}
}

// The cap and the budget bound same-endpoint retries as any others: in a
// total outage of a lone endpoint a call makes MaxAttempts attempts at
// most, and none beyond the budget.
func TestSameEndpointRetryBounded(t *testing.T) {
	down := func(_ context.Context, a Info) (string, sturdy.Outcome) {
		return "", sturdy.Outcome{Class: sturdy.Unavailable}
	}
	r := newRetry(3)
	r.same = true
	p := fakepick.New("a")
	s := &Spec{Picker: p, Retry: r, Op: "test"}
	_, _, err := Run(context.Background(), s, down, nil)
	var se *sturdy.Error
	if !errors.As(err, &se) || len(se.Attempts) != 3 {
		t.Fatalf("err = %v, want 3 attempts", err)
	}
	r.budget.Store(1)
	_, _, err = Run(context.Background(), s, down, nil)
	if !errors.As(err, &se) || len(se.Attempts) != 2 {
		t.Fatalf("with one retry in the budget: err = %v, want 2 attempts", err)
	}
	if n := p.Open(); n != 0 {
		t.Fatalf("%d picks never reported", n)
	}
}

// A hedged call (the retry scheduled by coordinate) goes back to the lone
// endpoint too.
func TestSameEndpointRetryHedged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &alternating{fail: sturdy.Outcome{Class: sturdy.Unavailable}}
		r := newRetry(3)
		r.same = true
		r.backoff = 10 * time.Millisecond
		s := &Spec{Picker: fakepick.New("a"), Retry: r, Hedge: &hedgePol{delay: time.Second, maxH: 1}, Op: "test"}
		v, w, err := Run(context.Background(), s, srv.fn, nil)
		w.Release()
		if err != nil || v != "ok" {
			t.Fatalf("v %q err %v, want ok", v, err)
		}
		if len(srv.calls) != 2 {
			t.Fatalf("calls = %v, want two on a", srv.calls)
		}
	})
}

// A call that saw two endpoints fail does not go back to either: that is
// an outage of the tier, not a failure that may pass.
func TestNoSameEndpointRetryAfterSeveralFailed(t *testing.T) {
	down := func(_ context.Context, a Info) (string, sturdy.Outcome) {
		return "", sturdy.Outcome{Class: sturdy.Unavailable}
	}
	r := newRetry(5)
	r.same = true
	s := &Spec{Picker: fakepick.New("a", "b"), Retry: r, Op: "test"}
	_, _, err := Run(context.Background(), s, down, nil)
	var se *sturdy.Error
	if !errors.As(err, &se) || len(se.Attempts) != 2 {
		t.Fatalf("err = %v, want 2 attempts", err)
	}
}

// With a later tier behind, the call falls back rather than go back.
func TestNoSameEndpointRetryWithLaterTier(t *testing.T) {
	srv := &alternating{fail: sturdy.Outcome{Class: sturdy.Unavailable}}
	r := newRetry(3)
	r.same = true
	s := &Spec{Picker: fakepick.New("a"), Retry: r, Op: "test", LaterTier: true}
	_, _, err := Run(context.Background(), s, srv.fn, nil)
	if err == nil || len(srv.calls) != 1 {
		t.Fatalf("err %v calls %v, want one failed attempt", err, srv.calls)
	}
}
