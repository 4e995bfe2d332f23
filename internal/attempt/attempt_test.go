package attempt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type retryPol struct {
	max     int
	timeout time.Duration
	perN    []time.Duration // timeout of attempt n at [n-1]; overrides timeout
	backoff time.Duration
	raWait  time.Duration
	budget  atomic.Int64 // retries left; negative: unlimited
	deposit atomic.Int64
	same    bool // retries may go back to endpoints already tried

	mu       sync.Mutex
	observed []observation
}

type observation struct {
	kind  sturdy.AttemptKind
	class sturdy.Class
}

func newRetry(max int) *retryPol {
	r := &retryPol{max: max}
	r.budget.Store(-1)
	return r
}

func (r *retryPol) MaxAttempts() int { return r.max }
func (r *retryPol) AttemptTimeout(n int, _ bool) time.Duration {
	if n-1 < len(r.perN) {
		return r.perN[n-1]
	}
	return r.timeout
}
func (r *retryPol) Retryable(c sturdy.Class) bool    { return c.RetryElsewhere() }
func (r *retryPol) Backoff(int) time.Duration        { return r.backoff }
func (r *retryPol) MaxRetryAfterWait() time.Duration { return r.raWait }
func (r *retryPol) SameEndpoint() bool               { return r.same }
func (r *retryPol) RetrySame(a sturdy.Attempt) bool {
	return r.same && (a.Class == sturdy.Unavailable || a.Class == sturdy.Timeout || a.Class == sturdy.Overloaded && a.RetryAfter <= 0)
}
func (r *retryPol) Deposit(time.Time) { r.deposit.Add(1) }
func (r *retryPol) observations() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.observed)
}
func (r *retryPol) Observe(kind sturdy.AttemptKind, o sturdy.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed = append(r.observed, observation{kind, o.Class})
}
func (r *retryPol) AllowRetry(time.Time) bool {
	for {
		b := r.budget.Load()
		if b < 0 {
			return true
		}
		if b == 0 {
			return false
		}
		if r.budget.CompareAndSwap(b, b-1) {
			return true
		}
	}
}

type hedgePol struct {
	delay    time.Duration
	maxH     int
	refuse   bool
	mu       sync.Mutex
	observed []time.Duration
}

func (h *hedgePol) Delay() (time.Duration, bool) { return h.delay, true }
func (h *hedgePol) MaxHedges() int               { return h.maxH }
func (h *hedgePol) Deposit(time.Time)            {}
func (h *hedgePol) AllowHedge(time.Time) bool    { return !h.refuse }
func (h *hedgePol) Observe(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.observed = append(h.observed, d)
}

// behaviour says what each endpoint does when called.
type behaviour struct {
	delay      time.Duration
	class      sturdy.Class
	retryAfter time.Duration
}

type server struct {
	mu       sync.Mutex
	by       map[string]behaviour
	calls    []string
	cleaned  []string
	canceled []string
}

func (s *server) fn(ctx context.Context, a Info) (string, sturdy.Outcome) {
	s.mu.Lock()
	b := s.by[a.Endpoint.Name]
	s.calls = append(s.calls, a.Endpoint.Name)
	s.mu.Unlock()
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			s.mu.Lock()
			s.canceled = append(s.canceled, a.Endpoint.Name)
			s.mu.Unlock()
			return "", sturdy.Outcome{Class: sturdy.Canceled, Err: ctx.Err()}
		}
	}
	v := a.Endpoint.Name + ":" + b.class.String()
	if b.class == sturdy.Success {
		return v, sturdy.Outcome{}
	}
	return v, sturdy.Outcome{Class: b.class, Err: fmt.Errorf("%s said %s", a.Endpoint.Name, b.class), RetryAfter: b.retryAfter}
}

func (s *server) cleanup(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleaned = append(s.cleaned, v)
}

func (s *server) snapshot() (calls, cleaned, canceled []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls), slices.Clone(s.cleaned), slices.Clone(s.canceled)
}

func TestFailover(t *testing.T) {
	tests := []struct {
		name        string
		by          map[string]behaviour
		max         int
		wantValue   string
		wantErr     error // nil: success
		wantCalls   []string
		wantCleaned []string
	}{
		{
			name:      "first succeeds",
			by:        map[string]behaviour{},
			max:       3,
			wantValue: "a:success",
			wantCalls: []string{"a"},
		},
		{
			name:        "unavailable then success elsewhere",
			by:          map[string]behaviour{"a": {class: sturdy.Unavailable}},
			max:         3,
			wantValue:   "b:success",
			wantCalls:   []string{"a", "b"},
			wantCleaned: []string{"a:unavailable"},
		},
		{
			name:      "fatal is not retried",
			by:        map[string]behaviour{"a": {class: sturdy.Fatal}},
			max:       3,
			wantValue: "a:fatal",
			wantErr:   sturdy.ErrFatal,
			wantCalls: []string{"a"},
		},
		{
			name:      "too large is not retried",
			by:        map[string]behaviour{"a": {class: sturdy.TooLarge}},
			max:       3,
			wantValue: "a:too_large",
			wantErr:   sturdy.ErrTooLarge,
			wantCalls: []string{"a"},
		},
		{
			name:        "auth moves to another endpoint",
			by:          map[string]behaviour{"a": {class: sturdy.Auth}},
			max:         3,
			wantValue:   "b:success",
			wantCalls:   []string{"a", "b"},
			wantCleaned: []string{"a:auth"},
		},
		{
			name: "all fail: last value kept, earlier cleaned",
			by: map[string]behaviour{
				"a": {class: sturdy.Unavailable},
				"b": {class: sturdy.Overloaded},
				"c": {class: sturdy.Unavailable},
			},
			max:         5,
			wantValue:   "c:unavailable",
			wantErr:     sturdy.ErrUnavailable,
			wantCalls:   []string{"a", "b", "c"},
			wantCleaned: []string{"a:unavailable", "b:overloaded"},
		},
		{
			name: "attempt cap",
			by: map[string]behaviour{
				"a": {class: sturdy.Unavailable},
				"b": {class: sturdy.Unavailable},
			},
			max:         2,
			wantValue:   "b:unavailable",
			wantErr:     sturdy.ErrUnavailable,
			wantCalls:   []string{"a", "b"},
			wantCleaned: []string{"a:unavailable"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &server{by: tc.by}
			p := fakepick.New("a", "b", "c")
			s := &Spec{Picker: p, Retry: newRetry(tc.max), Op: "test"}
			v, w, err := Run(context.Background(), s, srv.fn, srv.cleanup)
			w.Release()
			if v != tc.wantValue {
				t.Errorf("value = %q, want %q", v, tc.wantValue)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				var se *sturdy.Error
				if !errors.As(err, &se) || len(se.Attempts) != len(tc.wantCalls) {
					t.Fatalf("err %v does not list %d attempts", err, len(tc.wantCalls))
				}
				for i, a := range se.Attempts {
					if a.Endpoint != tc.wantCalls[i] {
						t.Errorf("attempt %d on %s, want %s", i, a.Endpoint, tc.wantCalls[i])
					}
				}
			}
			calls, cleaned, _ := srv.snapshot()
			if !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("calls = %v, want %v", calls, tc.wantCalls)
			}
			if !slices.Equal(cleaned, tc.wantCleaned) {
				t.Errorf("cleaned = %v, want %v", cleaned, tc.wantCleaned)
			}
			if n := p.Open(); n != 0 {
				t.Errorf("%d picks never reported to the balancer", n)
			}
		})
	}
}

func TestWinnerReportedAtRelease(t *testing.T) {
	p := fakepick.New("a")
	srv := &server{by: map[string]behaviour{}}
	var ended []bool
	hooks := &Hooks{End: func(_ context.Context, _ Info, _ sturdy.Outcome, won bool) { ended = append(ended, won) }}
	s := &Spec{Picker: p, Hooks: hooks}
	_, w, err := Run(context.Background(), s, srv.fn, srv.cleanup)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Reported("a")) != 0 || len(ended) != 0 {
		t.Fatal("winner reported before Release")
	}
	w.Release()
	w.Release()
	if got := p.Reported("a"); !slices.Equal(got, []sturdy.Class{sturdy.Success}) {
		t.Fatalf("balancer got %v", got)
	}
	if !slices.Equal(ended, []bool{true}) {
		t.Fatalf("End hook got %v, want one winner", ended)
	}
}

func TestBudgetStopsRetries(t *testing.T) {
	srv := &server{by: map[string]behaviour{"a": {class: sturdy.Unavailable}}}
	r := newRetry(3)
	r.budget.Store(0)
	s := &Spec{Picker: fakepick.New("a", "b"), Retry: r}
	_, _, err := Run(context.Background(), s, srv.fn, srv.cleanup)
	if !errors.Is(err, sturdy.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if calls, _, _ := srv.snapshot(); len(calls) != 1 {
		t.Fatalf("calls = %v: retried without budget", calls)
	}
	if r.deposit.Load() != 1 {
		t.Fatalf("deposits = %d, want 1", r.deposit.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name      string
		ra        time.Duration
		cap       time.Duration
		wantCalls int
		wantWait  time.Duration
	}{
		{"short wait is honoured", 200 * time.Millisecond, time.Second, 3, 200 * time.Millisecond},
		{"wait beyond the cap gives up", 5 * time.Second, time.Second, 2, 0},
		{"no waiting when the cap is zero", 200 * time.Millisecond, 0, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &server{by: map[string]behaviour{
					"a": {class: sturdy.Overloaded, retryAfter: tc.ra},
					"b": {class: sturdy.Overloaded, retryAfter: tc.ra},
				}}
				r := newRetry(3)
				r.raWait = tc.cap
				s := &Spec{Picker: fakepick.New("a", "b"), Retry: r}
				start := time.Now()
				_, _, err := Run(context.Background(), s, srv.fn, srv.cleanup)
				if !errors.Is(err, sturdy.ErrOverloaded) {
					t.Fatalf("err = %v", err)
				}
				var se *sturdy.Error
				if errors.As(err, &se); se.RetryAfter != tc.ra {
					t.Errorf("error RetryAfter = %v, want %v", se.RetryAfter, tc.ra)
				}
				calls, _, _ := srv.snapshot()
				if len(calls) != tc.wantCalls {
					t.Errorf("calls = %v, want %d", calls, tc.wantCalls)
				}
				if got := time.Since(start); got != tc.wantWait {
					t.Errorf("waited %v, want %v", got, tc.wantWait)
				}
			})
		})
	}
}

func TestAttemptTimeoutFailsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{by: map[string]behaviour{"a": {delay: time.Hour}}}
		r := newRetry(3)
		r.timeout = 2 * time.Second
		p := fakepick.New("a", "b")
		s := &Spec{Picker: p, Retry: r}
		start := time.Now()
		v, w, err := Run(context.Background(), s, srv.fn, srv.cleanup)
		if err != nil || v != "b:success" {
			t.Fatalf("v=%q err=%v", v, err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("failed over after %v, want 2s", got)
		}
		if got := p.Reported("a"); !slices.Equal(got, []sturdy.Class{sturdy.Timeout}) {
			t.Errorf("a reported %v, want timeout", got)
		}
		w.Release()
	})
}

func TestAttemptTimeoutDoesNotCutTheWinner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetry(1)
		r.timeout = time.Second
		var actx context.Context
		s := &Spec{Picker: fakepick.New("a"), Retry: r}
		_, w, err := Run(context.Background(), s, func(ctx context.Context, _ Info) (string, sturdy.Outcome) {
			actx = ctx
			return "ok", sturdy.Outcome{}
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // reading the body outlasts the attempt timeout
		if actx.Err() != nil {
			t.Fatal("the winner's context was cancelled by the attempt timeout")
		}
		w.Release()
		if actx.Err() == nil {
			t.Fatal("Release did not release the winner's context")
		}
	})
}

func TestNeverWaitsPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{by: map[string]behaviour{"a": {class: sturdy.Unavailable}}}
		r := newRetry(3)
		r.backoff = 10 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s := &Spec{Picker: fakepick.New("a", "b"), Retry: r}
		start := time.Now()
		_, _, err := Run(ctx, s, srv.fn, srv.cleanup)
		if !errors.Is(err, sturdy.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
		if got := time.Since(start); got != 0 {
			t.Fatalf("waited %v for a backoff that ends past the deadline", got)
		}
	})
}

func TestCallerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{by: map[string]behaviour{"a": {delay: time.Hour}}}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		p := fakepick.New("a", "b")
		s := &Spec{Picker: p, Retry: newRetry(3)}
		_, _, err := Run(ctx, s, srv.fn, srv.cleanup)
		if !errors.Is(err, sturdy.ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want canceled", err)
		}
		if calls, _, _ := srv.snapshot(); len(calls) != 1 {
			t.Fatalf("calls = %v: retried after the caller gave up", calls)
		}
		if got := p.Reported("a"); !slices.Equal(got, []sturdy.Class{sturdy.Canceled}) {
			t.Fatalf("a reported %v", got)
		}
	})
}

func TestHedge(t *testing.T) {
	tests := []struct {
		name         string
		by           map[string]behaviour
		retry        int // 0: no retry policy
		refuse       bool
		wantValue    string
		wantErr      error
		wantElapsed  time.Duration
		wantCalls    []string
		wantCanceled []string
	}{
		{
			name:      "fast first attempt: no hedge",
			by:        map[string]behaviour{"a": {delay: 10 * time.Millisecond}},
			wantValue: "a:success", wantElapsed: 10 * time.Millisecond,
			wantCalls: []string{"a"},
		},
		{
			name:      "slow first attempt: hedge wins, loser cancelled",
			by:        map[string]behaviour{"a": {delay: time.Second}, "b": {delay: 20 * time.Millisecond}},
			wantValue: "b:success", wantElapsed: 70 * time.Millisecond,
			wantCalls: []string{"a", "b"}, wantCanceled: []string{"a"},
		},
		{
			name:      "budget refuses: no hedge",
			by:        map[string]behaviour{"a": {delay: time.Second}, "b": {delay: 20 * time.Millisecond}},
			refuse:    true,
			wantValue: "a:success", wantElapsed: time.Second,
			wantCalls: []string{"a"},
		},
		{
			name: "an error does not lose the call while a hedge runs",
			by: map[string]behaviour{
				"a": {delay: 80 * time.Millisecond, class: sturdy.Unavailable},
				"b": {delay: 100 * time.Millisecond},
			},
			wantValue: "b:success", wantElapsed: 150 * time.Millisecond,
			wantCalls: []string{"a", "b"},
		},
		{
			name: "all attempts fail",
			by: map[string]behaviour{
				"a": {delay: 80 * time.Millisecond, class: sturdy.Unavailable},
				"b": {delay: 100 * time.Millisecond, class: sturdy.Unavailable},
			},
			wantValue: "b:unavailable", wantErr: sturdy.ErrUnavailable, wantElapsed: 150 * time.Millisecond,
			wantCalls: []string{"a", "b"},
		},
		{
			name: "hedge plus retry after a fast failure",
			by: map[string]behaviour{
				"a": {delay: 10 * time.Millisecond, class: sturdy.Unavailable},
				"b": {delay: 20 * time.Millisecond},
			},
			retry:     3,
			wantValue: "b:success", wantElapsed: 30 * time.Millisecond,
			wantCalls: []string{"a", "b"},
		},
		{
			name: "a failed hedge is retried while the first attempt stalls",
			by: map[string]behaviour{
				"a": {delay: time.Second},
				"b": {delay: 10 * time.Millisecond, class: sturdy.Unavailable},
				"c": {delay: 20 * time.Millisecond},
			},
			retry:     3,
			wantValue: "c:success", wantElapsed: 80 * time.Millisecond,
			wantCalls: []string{"a", "b", "c"}, wantCanceled: []string{"a"},
		},
		{
			name: "fatal stops the hedges",
			by: map[string]behaviour{
				"a": {delay: time.Second},
				"b": {delay: 10 * time.Millisecond, class: sturdy.Fatal},
			},
			retry:     3,
			wantValue: "b:fatal", wantErr: sturdy.ErrFatal, wantElapsed: 60 * time.Millisecond,
			wantCalls: []string{"a", "b"}, wantCanceled: []string{"a"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &server{by: tc.by}
				h := &hedgePol{delay: 50 * time.Millisecond, maxH: 1, refuse: tc.refuse}
				p := fakepick.New("a", "b", "c")
				s := &Spec{Picker: p, Hedge: h}
				if tc.retry > 0 {
					s.Retry = newRetry(tc.retry)
				}
				start := time.Now()
				v, w, err := Run(context.Background(), s, srv.fn, srv.cleanup)
				elapsed := time.Since(start)
				if v != tc.wantValue {
					t.Errorf("value = %q, want %q", v, tc.wantValue)
				}
				if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if elapsed != tc.wantElapsed {
					t.Errorf("took %v, want %v", elapsed, tc.wantElapsed)
				}
				calls, _, canceled := srv.snapshot()
				if !slices.Equal(calls, tc.wantCalls) {
					t.Errorf("calls = %v, want %v", calls, tc.wantCalls)
				}
				if !slices.Equal(canceled, tc.wantCanceled) {
					t.Errorf("canceled = %v, want %v", canceled, tc.wantCanceled)
				}
				w.Release()
				if n := p.Open(); n != 0 {
					t.Errorf("%d picks never reported", n)
				}
			})
		})
	}
}

func TestHedgeWinnerContextOutlivesRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &hedgePol{delay: 50 * time.Millisecond, maxH: 1}
		var mu sync.Mutex
		ctxs := map[string]context.Context{}
		s := &Spec{Picker: fakepick.New("a", "b"), Hedge: h}
		v, w, err := Run(context.Background(), s, func(ctx context.Context, a Info) (string, sturdy.Outcome) {
			mu.Lock()
			ctxs[a.Endpoint.Name] = ctx
			mu.Unlock()
			if a.Endpoint.Name == "a" {
				<-ctx.Done()
				return "", sturdy.Outcome{Class: sturdy.Canceled, Err: ctx.Err()}
			}
			return "b", sturdy.Outcome{}
		}, nil)
		if err != nil || v != "b" {
			t.Fatalf("v=%q err=%v", v, err)
		}
		if ctxs["a"].Err() == nil {
			t.Error("the loser's context is still live")
		}
		if ctxs["b"].Err() != nil {
			t.Error("the winner's context was cancelled before Release")
		}
		w.Release()
		if ctxs["b"].Err() == nil {
			t.Error("Release left the winner's context live")
		}
	})
}

func TestHedgeCallerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{by: map[string]behaviour{"a": {delay: time.Hour}, "b": {delay: time.Hour}}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s := &Spec{Picker: fakepick.New("a", "b"), Hedge: &hedgePol{delay: 50 * time.Millisecond, maxH: 1}}
		_, _, err := Run(ctx, s, srv.fn, srv.cleanup)
		if !errors.Is(err, sturdy.ErrCanceled) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if _, _, canceled := srv.snapshot(); len(canceled) != 2 {
			t.Fatalf("canceled = %v, want both attempts", canceled)
		}
	})
}

func TestManyConcurrentHedgedCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{by: map[string]behaviour{
			"a": {delay: 100 * time.Millisecond},
			"b": {delay: 10 * time.Millisecond, class: sturdy.Unavailable},
			"c": {delay: 30 * time.Millisecond},
		}}
		p := fakepick.New("a", "b", "c")
		s := &Spec{Picker: p, Retry: newRetry(3), Hedge: &hedgePol{delay: 20 * time.Millisecond, maxH: 2}}
		var wg sync.WaitGroup
		var ok atomic.Int64
		for range 200 {
			wg.Go(func() {
				_, w, err := Run(context.Background(), s, srv.fn, srv.cleanup)
				if err == nil {
					ok.Add(1)
				}
				w.Release()
			})
		}
		wg.Wait()
		if ok.Load() != 200 {
			t.Fatalf("%d of 200 calls succeeded", ok.Load())
		}
		if n := p.Open(); n != 0 {
			t.Fatalf("%d picks never reported", n)
		}
	})
}

func TestNoPicker(t *testing.T) {
	n := 0
	s := &Spec{Retry: newRetry(3)}
	v, _, err := Run(context.Background(), s, func(_ context.Context, a Info) (int, sturdy.Outcome) {
		n++
		if a.Endpoint != nil {
			t.Fatal("endpoint without a picker")
		}
		if n < 3 {
			return 0, sturdy.Outcome{Class: sturdy.Unavailable}
		}
		return n, sturdy.Outcome{}
	}, nil)
	if err != nil || v != 3 {
		t.Fatalf("v=%d err=%v", v, err)
	}
}

// lateCtx is a context whose deadline has passed while its Err is still nil,
// as a context looks between its deadline and its timer firing.
type lateCtx struct{ context.Context }

func (lateCtx) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// TestDeadlinePassedBeforeContextNoticed: an attempt that times out after
// the caller's deadline is the caller's, even before ctx.Err() says so, and
// is not retried elsewhere.
func TestDeadlinePassedBeforeContextNoticed(t *testing.T) {
	for _, hedged := range []bool{false, true} {
		t.Run(fmt.Sprint("hedged=", hedged), func(t *testing.T) {
			srv := &server{by: map[string]behaviour{"a": {class: sturdy.Timeout}, "b": {class: sturdy.Timeout}}}
			p := fakepick.New("a", "b")
			s := &Spec{Picker: p, Retry: newRetry(3)}
			if hedged {
				s.Hedge = &hedgePol{delay: time.Hour, maxH: 1}
			}
			_, _, err := Run(lateCtx{context.Background()}, s, srv.fn, srv.cleanup)
			if !errors.Is(err, sturdy.ErrCanceled) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the caller's deadline", err)
			}
			if calls, _, _ := srv.snapshot(); len(calls) != 1 {
				t.Fatalf("calls = %v: retried after the caller's deadline", calls)
			}
			if got := p.Reported("a"); !slices.Equal(got, []sturdy.Class{sturdy.Canceled}) {
				t.Fatalf("a reported %v: the caller's deadline was charged to the endpoint", got)
			}
		})
	}
}
