package health

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/policy"
)

var (
	okO      = sturdy.Outcome{Class: sturdy.Success}
	downO    = sturdy.Outcome{Class: sturdy.Unavailable}
	timeoutO = sturdy.Outcome{Class: sturdy.Timeout}
	authO    = sturdy.Outcome{Class: sturdy.Auth}
	busyO    = sturdy.Outcome{Class: sturdy.Overloaded}
)

// seq builds a sequence of outcomes from a compact pattern:
// S success, F unavailable, T timeout, A auth, O overloaded, L too large,
// X fatal, C canceled.
func seq(pattern string) []sturdy.Outcome {
	classes := map[rune]sturdy.Class{
		'S': sturdy.Success, 'F': sturdy.Unavailable, 'T': sturdy.Timeout, 'A': sturdy.Auth,
		'O': sturdy.Overloaded, 'L': sturdy.TooLarge, 'X': sturdy.Fatal, 'C': sturdy.Canceled,
	}
	var out []sturdy.Outcome
	for _, r := range pattern {
		if r == 'K' { // cut by sturdy's own attempt timeout
			out = append(out, sturdy.Outcome{Class: sturdy.Timeout, Err: fmt.Errorf("attempt: %w", policy.ErrAttemptTimeout)})
			continue
		}
		out = append(out, sturdy.Outcome{Class: classes[r]})
	}
	return out
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func lastReason(r *recorder) string {
	scs := r.changes()
	if len(scs) == 0 {
		return ""
	}
	return scs[len(scs)-1].Reason
}

func TestPassiveEjectionRules(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    State
		reason  string
	}{
		{"five consecutive failures eject", "FFFFF", Ejected, ReasonConsecutiveFailures},
		{"four consecutive failures do not", "FFFF", Healthy, ""},
		{"timeouts are failures", "TTTTT", Ejected, ReasonConsecutiveFailures},
		{"attempts cut by sturdy's attempt timeout are not", repeat("K", 20), Healthy, ""},
		{"nor do they break a run of failures", "FFKKFFF", Ejected, ReasonConsecutiveFailures},
		{"a success resets the run", "FFFFSFFFF", Healthy, ""},
		{"overloaded never ejects", repeat("O", 100), Healthy, ""},
		{"overloaded does not break a run of failures", "FFFOOFF", Ejected, ReasonConsecutiveFailures},
		{"too large, fatal and canceled are ignored", repeat("LXC", 50), Healthy, ""},
		{"auth ejects at once", "SSA", Ejected, ReasonAuth},
		{"failure rate ejects at min calls", repeat("SF", 10), Ejected, ReasonFailureRate},
		{"failure rate needs min calls", repeat("SF", 9) + "S", Healthy, ""},
		{"failure rate below threshold", repeat("SSF", 20), Healthy, ""},
		{"overloaded is not a call for the rate", repeat("OSF", 10), Ejected, ReasonFailureRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr, r := newTracker(t, Config{})
				m := tr.Add("a")
				for _, o := range seq(tt.pattern) {
					m.Observe(o)
				}
				if got := m.State(); got != tt.want {
					t.Fatalf("state = %v, want %v", got, tt.want)
				}
				if got := lastReason(r); got != tt.reason {
					t.Fatalf("reason = %q, want %q", got, tt.reason)
				}
				if m.Allowed() != (tt.want != Ejected) {
					t.Fatalf("Allowed = %v in state %v", m.Allowed(), tt.want)
				}
			})
		})
	}
}

func TestFailureRateForgetsCallsOlderThanWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{})
		m := tr.Add("a")
		for _, o := range seq(repeat("SF", 9)) { // 18 calls, 50% failures
			m.Observe(o)
		}
		time.Sleep(10 * time.Second)
		for _, o := range seq("SF") { // 20 calls in 10s+, but only 2 in the window
			m.Observe(o)
		}
		if got := m.State(); got != Healthy {
			t.Fatalf("state = %v, want healthy: old calls must leave the window", got)
		}
		for _, o := range seq(repeat("SF", 9)) { // 20 in the window now
			m.Observe(o)
		}
		if got := m.State(); got != Ejected {
			t.Fatalf("state = %v, want ejected once the window holds 20 calls", got)
		}
	})
}

func TestRulesCanBeTurnedOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{ConsecutiveFailures: -1, FailureRate: -1})
		m := tr.Add("a")
		for _, o := range seq(repeat("F", 100)) {
			m.Observe(o)
		}
		if got := m.State(); got != Healthy {
			t.Fatalf("state = %v, want healthy with both rules off", got)
		}
		m.Observe(authO)
		if got := m.State(); got != Ejected {
			t.Fatalf("state = %v: auth must still eject", got)
		}
	})
}

// ejectionDurations returns, for each ejection the recorder saw, how long
// it lasted (from the ejection to its expiry).
func ejectionDurations(scs []StateChange) []time.Duration {
	var out []time.Duration
	var start time.Time
	for _, sc := range scs {
		switch {
		case sc.To == Ejected:
			start = sc.At
		case sc.From == Ejected && sc.Reason == ReasonExpired:
			out = append(out, sc.At.Sub(start))
		}
	}
	return out
}

func TestEjectionTimeGrowsAndCaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, r := newTracker(t, Config{BaseEjection: 30 * time.Second, MaxEjection: 90 * time.Second})
		m := tr.Add("a")
		m.Observe(authO)
		for range 4 {
			// Sleep until the ejection surely ended, then fail in probation.
			time.Sleep(5 * time.Minute)
			if got := m.State(); got != Probation {
				t.Fatalf("state = %v, want probation after the ejection", got)
			}
			m.Observe(downO)
			if got := lastReason(r); got != ReasonProbationFailure {
				t.Fatalf("reason = %q, want %q", got, ReasonProbationFailure)
			}
		}
		time.Sleep(5 * time.Minute)
		m.State()
		got := ejectionDurations(r.changes())
		want := []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second, 90 * time.Second, 90 * time.Second}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ejection durations = %v, want %v", got, want)
		}
	})
}

func TestEjectionEndsExactlyOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{})
		m := tr.Add("a")
		m.Observe(authO)
		time.Sleep(30*time.Second - time.Nanosecond)
		if m.Allowed() {
			t.Fatal("allowed before the 30s ejection ended")
		}
		time.Sleep(time.Nanosecond)
		if !m.Allowed() || m.State() != Probation {
			t.Fatalf("state = %v, want probation right at the end of the ejection", m.State())
		}
	})
}

func TestEjectionCountDecaysWhileHealthy(t *testing.T) {
	tests := []struct {
		name    string
		healthy time.Duration // time spent healthy before the third ejection
		want    time.Duration // length of the third ejection
	}{
		{"no time healthy: third ejection", 0, 90 * time.Second},
		{"one base healthy: one step back", 30 * time.Second, 60 * time.Second},
		{"just under one base: no step back", 30*time.Second - time.Nanosecond, 90 * time.Second},
		{"two bases healthy: back to the first", 60 * time.Second, 30 * time.Second},
		{"long healthy: no lower than the first", time.Hour, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr, r := newTracker(t, Config{})
				m := tr.Add("a")
				m.Observe(authO)             // ejection 1: 30s
				time.Sleep(30 * time.Second) // → probation
				m.Observe(downO)             // ejection 2: 60s
				time.Sleep(60 * time.Second) // → probation
				m.Observe(okO)               // → healthy
				time.Sleep(tt.healthy)
				m.Observe(authO)
				time.Sleep(10 * time.Minute)
				m.State()
				d := ejectionDurations(r.changes())
				if len(d) != 3 || d[2] != tt.want {
					t.Fatalf("ejection durations = %v, want the third to be %v", d, tt.want)
				}
			})
		})
	}
}

func ejectAll(tr *Tracker, n int) (ejected int) {
	for i := range n {
		m := tr.Add(fmt.Sprint("m", i))
		for _, o := range seq("FFFFF") {
			m.Observe(o)
		}
	}
	for i := range n {
		if tr.State(fmt.Sprint("m", i)) == Ejected {
			ejected++
		}
	}
	return ejected
}

func TestMaxEjectedShare(t *testing.T) {
	tests := []struct {
		name    string
		share   float64
		members int
		want    int
	}{
		{"10 members at 0.1: one", 0, 10, 1},
		{"3 members at 0.1: still one", 0, 3, 1},
		{"1 member: it may be ejected", 0, 1, 1},
		{"25 members at 0.1: two", 0, 25, 2},
		{"10 members at 0.29: two", 0.29, 10, 2},
		{"100 members at 0.29: 29", 0.29, 100, 29},
		{"4 members at 1: all", 1, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr, _ := newTracker(t, Config{MaxEjectedShare: tt.share})
				for i := range tt.members { // add them all first: the share is of the pool
					tr.Add(fmt.Sprint("m", i))
				}
				if got := ejectAll(tr, tt.members); got != tt.want {
					t.Fatalf("ejected %d, want %d", got, tt.want)
				}
			})
		})
	}
}

func TestMaxEjectedShareFreesWhenEjectionEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{})
		a, b := tr.Add("a"), tr.Add("b")
		a.Observe(authO)
		b.Observe(authO)
		if a.State() != Ejected || b.State() != Healthy {
			t.Fatalf("a=%v b=%v, want only a ejected", a.State(), b.State())
		}
		b.Observe(authO) // still capped
		time.Sleep(30 * time.Second)
		if a.State() != Probation {
			t.Fatalf("a = %v, want probation", a.State())
		}
		b.Observe(authO)
		if b.State() != Ejected {
			t.Fatalf("b = %v, want ejected once a's ejection ended", b.State())
		}
		tr.Remove("b") // removing an ejected member frees its place
		a.Observe(downO)
		if a.State() != Ejected {
			t.Fatalf("a = %v, want ejected after b was removed", a.State())
		}
	})
}

func TestProbation(t *testing.T) {
	tests := []struct {
		name      string
		successes int
		pattern   string // outcomes in probation
		want      State
		reason    string
	}{
		{"one success heals", 0, "S", Healthy, ReasonSuccess},
		{"a failure re-ejects", 0, "F", Ejected, ReasonProbationFailure},
		{"auth re-ejects as auth", 0, "A", Ejected, ReasonAuth},
		{"overloaded neither heals nor ejects", 0, "OOO", Probation, ReasonExpired},
		{"needs all its successes", 3, "SS", Probation, ReasonExpired},
		{"heals after its successes", 3, "SSS", Healthy, ReasonSuccess},
		{"a late failure still re-ejects", 3, "SSF", Ejected, ReasonProbationFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr, r := newTracker(t, Config{ProbationSuccesses: tt.successes})
				m := tr.Add("a")
				m.Observe(authO)
				time.Sleep(30 * time.Second)
				if got := m.State(); got != Probation {
					t.Fatalf("state = %v, want probation", got)
				}
				for _, o := range seq(tt.pattern) {
					m.Observe(o)
				}
				if got := m.State(); got != tt.want {
					t.Fatalf("state = %v, want %v", got, tt.want)
				}
				if got := lastReason(r); got != tt.reason {
					t.Fatalf("reason = %q, want %q", got, tt.reason)
				}
			})
		})
	}
}

func TestOutcomesWhileEjectedAreIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, r := newTracker(t, Config{})
		m := tr.Add("a")
		m.Observe(authO)
		for _, o := range seq("SSSSFFFFA") {
			m.Observe(o)
		}
		if m.State() != Ejected || len(r.changes()) != 1 {
			t.Fatalf("state %v after %d changes, want one ejection and nothing else", m.State(), len(r.changes()))
		}
	})
}

func TestEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, r := newTracker(t, Config{})
		m := tr.Add("a")
		tr.Add("b")
		e0 := tr.Epoch()
		m.Observe(okO)
		m.Observe(busyO)
		if tr.Epoch() != e0 {
			t.Fatal("epoch changed without a transition")
		}
		m.Observe(authO)
		e1 := tr.Epoch()
		if e1 == e0 {
			t.Fatal("epoch did not change on ejection")
		}
		time.Sleep(29 * time.Second)
		if tr.Epoch() != e1 {
			t.Fatal("epoch changed before the ejection ended")
		}
		time.Sleep(time.Minute) // nobody looks at m in between
		e2 := tr.Epoch()
		if e2 == e1 {
			t.Fatal("epoch did not notice the expired ejection")
		}
		scs := r.changes()
		last := scs[len(scs)-1]
		if last.Reason != ReasonExpired || last.To != Probation {
			t.Fatalf("last change = %+v, want expiry to probation", last)
		}
		if got := last.At.Sub(scs[0].At); got != 30*time.Second {
			t.Fatalf("expiry At is %v after the ejection, want exactly 30s", got)
		}
		if tr.Epoch() != e2 {
			t.Fatal("epoch changed again with nothing new")
		}
		tr.Add("c")
		if tr.Epoch() == e2 {
			t.Fatal("epoch did not change on Add")
		}
	})
}

func TestEpochSweepsOnlyExpiredMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{MaxEjectedShare: 1})
		a, b := tr.Add("a"), tr.Add("b")
		a.Observe(authO) // ends at 30s
		time.Sleep(10 * time.Second)
		b.Observe(authO) // ends at 40s
		time.Sleep(25 * time.Second)
		tr.Epoch()
		if a.state != Probation || b.state != Ejected { // read the fields: State() would advance them itself
			t.Fatalf("a=%v b=%v, want a swept to probation and b still ejected", a.state, b.state)
		}
		time.Sleep(5 * time.Second)
		tr.Epoch()
		if b.state != Probation {
			t.Fatalf("b=%v, want swept at its own expiry", b.state)
		}
	})
}

func TestHookRunsOutsideLocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tr *Tracker
		var calls int
		hook := func(sc StateChange) {
			calls++
			// Each of these takes a lock that a hook under lock would deadlock on.
			tr.State(sc.Endpoint)
			tr.Allowed(sc.Endpoint)
			tr.Epoch()
			tr.Member(sc.Endpoint).Availability()
			tr.Add("other")
			tr.Member(sc.Endpoint).Observe(busyO)
		}
		var err error
		tr, err = New(Config{OnStateChange: hook})
		if err != nil {
			t.Fatal(err)
		}
		m := tr.Add("a")
		m.Observe(authO)             // hook from Observe
		time.Sleep(30 * time.Second) //
		tr.Epoch()                   // hook from the sweep
		m.Observe(downO)             // re-eject
		m.ProbeResult(nil)           // hook from ProbeResult
		m.Observe(okO)               // heal
		tr.Member("a").ProbeResult(errors.New("down"))
		if calls != 6 {
			t.Fatalf("hook called %d times, want 6", calls)
		}
	})
}

func TestProbeResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, r := newTracker(t, Config{})
		ms := make([]*Member, 10)
		for i := range ms {
			ms[i] = tr.Add(fmt.Sprint("m", i))
		}
		ms[0].ProbeResult(nil)
		if len(r.changes()) != 0 {
			t.Fatal("a probe success on a healthy member changed something")
		}
		ms[0].Observe(authO) // the one passive ejection the share allows
		ms[1].ProbeResult(errors.New("refused"))
		ms[2].ProbeResult(errors.New("refused"))
		for i, want := range []State{Ejected, Ejected, Ejected, Healthy} {
			if got := ms[i].State(); got != want {
				t.Fatalf("m%d = %v, want %v: probe failures eject beyond the share", i, got, want)
			}
		}
		if got := lastReason(r); got != ReasonProbeFailure {
			t.Fatalf("reason = %q, want %q", got, ReasonProbeFailure)
		}
		ms[3].Observe(authO)
		if ms[3].State() != Healthy {
			t.Fatal("a passive ejection went beyond the share")
		}
		n := len(r.changes())
		ms[1].ProbeResult(errors.New("refused"))
		if len(r.changes()) != n || ms[1].State() != Ejected {
			t.Fatal("a probe failure on an ejected member changed something")
		}
		ms[1].ProbeResult(nil)
		if ms[1].State() != Probation || lastReason(r) != ReasonProbeSuccess {
			t.Fatalf("m1 = %v (%s), want probation by probe success", ms[1].State(), lastReason(r))
		}
		ms[1].Observe(okO)
		if ms[1].State() != Healthy {
			t.Fatalf("m1 = %v, want healthy", ms[1].State())
		}
	})
}

func TestTrackerByName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{})
		tr.Observe("ghost", authO) // no-op
		if !tr.Allowed("ghost") || tr.State("ghost") != Healthy || tr.Member("ghost") != nil {
			t.Fatal("an unknown name must be allowed, healthy, and have no member")
		}
		if _, ok := tr.Availability("ghost"); ok {
			t.Fatal("Availability of an unknown name reported ok")
		}
		m := tr.Add("a")
		if m.Name() != "a" || tr.Member("a") != m {
			t.Fatal("Member does not return the added member")
		}
		tr.Observe("a", authO)
		if tr.Add("a") != m || tr.State("a") != Ejected || tr.Allowed("a") {
			t.Fatal("Add of an existing name must return it with its state")
		}
		tr.Remove("a")
		tr.Remove("a")
		if tr.Member("a") != nil || !tr.Allowed("a") {
			t.Fatal("Remove did not forget the member")
		}
		if m2 := tr.Add("a"); m2 == m || m2.State() != Healthy {
			t.Fatal("adding a removed name again must give a fresh member")
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{MaxEjectedShare: 0.5})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 2000 {
					name := fmt.Sprint("m", (g+i)%6)
					m := tr.Add(name)
					m.Allowed()
					m.Observe(seq("SFFTA")[i%5])
					if i%97 == 0 {
						tr.Remove(name)
					}
					if i%13 == 0 {
						m.ProbeResult(nil)
						time.Sleep(time.Second)
					}
					tr.Epoch()
					m.Availability()
				}
			})
		}
		wg.Wait()
		// The ejected counter must agree with the members' states.
		time.Sleep(time.Hour)
		tr.Epoch()
		var ejected int64
		for _, m := range *tr.members.Load() {
			if m.State() == Ejected {
				ejected++
			}
		}
		if got := tr.ejected.Load(); got != ejected {
			t.Fatalf("ejected counter = %d, members ejected = %d", got, ejected)
		}
	})
}

func TestOverloadedCoolsDownWithoutEjecting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []StateChange
		tr, err := New(Config{OnStateChange: func(c StateChange) { changes = append(changes, c) }})
		if err != nil {
			t.Fatal(err)
		}
		m := tr.Add("a")
		tr.Add("b")
		e0 := tr.Epoch()
		m.Observe(sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: 3 * time.Second})
		if m.Allowed() || !m.CoolingDown() {
			t.Fatal("a cooling member is allowed")
		}
		if m.State() != Healthy || len(changes) != 0 {
			t.Fatalf("state %v, changes %v: a cooldown must not eject", m.State(), changes)
		}
		e1 := tr.Epoch()
		if e1 == e0 {
			t.Fatal("Epoch did not change when the cooldown began")
		}
		// A shorter hint does not shorten it.
		m.Observe(sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Second})
		time.Sleep(2 * time.Second)
		if m.Allowed() {
			t.Fatal("cooldown shortened by a later, shorter hint")
		}
		time.Sleep(time.Second)
		if !m.Allowed() || m.CoolingDown() {
			t.Fatal("still cooling after the Retry-After")
		}
		if tr.Epoch() == e1 {
			t.Fatal("Epoch did not change when the cooldown ended")
		}
		if c := m.coolA.Load(); c != 0 {
			t.Fatalf("an ended cooldown is still set (%d): Allowed would read the clock for good", c)
		}
		// Overloaded without a hint changes nothing.
		m.Observe(sturdy.Outcome{Class: sturdy.Overloaded})
		if !m.Allowed() {
			t.Fatal("overloaded without Retry-After cooled the member")
		}
		if a := m.Availability(); a.Failures != 0 || a.Downtime != 0 {
			t.Fatalf("availability %+v: a cooldown is not downtime", a)
		}
	})
}

// TestLateSuccessKeepsNewerCounts: a success counts in the window as of
// its Outcome.End, and one reported long after it ended (a streamed
// answer released at its end) must not reset a bucket that holds newer
// calls: the window keeps them, and they count toward MinCalls.
func TestLateSuccessKeepsNewerCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{ConsecutiveFailures: -1, FailureRate: 0.3})
		m := tr.Add("a")
		ended := time.Now()
		time.Sleep(10 * time.Second) // one Window on: ended's bucket is now's
		for range 10 {
			m.Observe(sturdy.Outcome{Class: sturdy.Success, End: time.Now()})
		}
		m.Observe(sturdy.Outcome{Class: sturdy.Success, End: ended})
		for _, o := range seq(repeat("F", 9)) { // 20 calls, 45% failures
			m.Observe(o)
		}
		if got := m.State(); got != Ejected {
			t.Fatalf("state = %v, want ejected: the window must hold 20 calls", got)
		}
	})
}

// TestSuccessCountsAsOfItsEnd: a success whose attempt ended before the
// window began is not in it, however late it is reported.
func TestSuccessCountsAsOfItsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{ConsecutiveFailures: -1, FailureRate: 0.3})
		m := tr.Add("a")
		ended := time.Now()
		time.Sleep(15 * time.Second)
		for range 11 {
			m.Observe(sturdy.Outcome{Class: sturdy.Success, End: ended})
		}
		for _, o := range seq(repeat("F", 9)) {
			m.Observe(o)
		}
		if got := m.State(); got != Healthy {
			t.Fatalf("state = %v, want healthy: 9 calls in the window, fewer than MinCalls", got)
		}
		for range 11 {
			m.Observe(okO) // End zero: counted now
		}
		m.Observe(downO)
		if got := m.State(); got != Ejected {
			t.Fatalf("state = %v, want ejected: 21 calls in the window, 10 failed", got)
		}
	})
}

func TestOKRing(t *testing.T) {
	r := newOKRing(100) // 10 buckets of 10 ns
	for _, at := range []int64{0, 5, 95} {
		if !r.add(at) {
			r.reset(at)
		}
	}
	if got := r.sum(99); got != 3 {
		t.Fatalf("sum(99) = %d, want 3", got)
	}
	if got := r.sum(100); got != 1 {
		t.Fatalf("sum(100) = %d, want 1: the first bucket left the window", got)
	}
	if !r.add(103) {
		r.reset(103)
	}
	if r.add(3) == false || r.sum(105) != 3 {
		t.Fatalf("a count at 3, older than bucket 0's slice, goes to that newer slice: sum(105) = %d, want 3", r.sum(105))
	}
	r.clear()
	if got := r.sum(105); got != 0 {
		t.Fatalf("sum after clear = %d", got)
	}
}

// TestConcurrentSuccessesAreAllCounted: successes counted without the
// member's lock, from many goroutines, are all in the window.
func TestConcurrentSuccessesAreAllCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{})
		m := tr.Add("a")
		start := time.Now()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 500 {
					// Across five of the window's buckets.
					m.Observe(sturdy.Outcome{Class: sturdy.Success, End: start.Add(time.Duration(i*10+g) * time.Millisecond)})
				}
			}()
		}
		wg.Wait()
		time.Sleep(5 * time.Second)
		if got := m.ok.sum(tr.now()); got != 2000 {
			t.Fatalf("window holds %d successes, want 2000", got)
		}
	})
}
