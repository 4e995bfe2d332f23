package balancer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
)

var errDown = errors.New("probe: connection refused")

func newTracker(t testing.TB) *health.Tracker {
	t.Helper()
	tr, err := health.New(health.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// eject ejects name at once (a failed probe ejects even beyond
// MaxEjectedShare).
func eject(t testing.TB, tr *health.Tracker, names ...string) {
	t.Helper()
	for _, n := range names {
		tr.Member(n).ProbeResult(errDown)
		if tr.Allowed(n) {
			t.Fatalf("%s still allowed after a failed probe", n)
		}
	}
}

func TestHealthAndPanicMode(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	tests := []struct {
		name      string
		ejected   []string
		threshold float64
		exclude   []string
		wantSeen  string // endpoints that must all be picked, and nothing else
		wantErr   string // or the reason Pick must fail with
	}{
		{"one ejected is skipped", []string{"b"}, 0, nil, "a c d", ""},
		{"half allowed is not panic", []string{"a", "b"}, 0, nil, "c d", ""},
		{"under half allowed panics", []string{"a", "b", "c"}, 0, nil, "a b c d", ""},
		{"all ejected panics", names, 0, nil, "a b c d", ""},
		{"panic still honours exclusion", []string{"a", "b", "c"}, 0, []string{"a"}, "b c d", ""},
		{"threshold 1 panics on one ejection", []string{"b"}, 1, nil, "a b c d", ""},
		{"negative threshold never panics", []string{"a", "b", "c"}, -1, nil, "d", ""},
		{"negative threshold, all ejected", names, -1, nil, "", "health allows none of the 4 untried endpoints"},
		{"allowed ones all tried", []string{"a", "b"}, 0, []string{"c", "d"}, "", "health allows none of the 2 untried endpoints"},
	}
	for _, p := range allPolicies {
		for _, tt := range tests {
			t.Run(p.String()+"/"+tt.name, func(t *testing.T) {
				tr := newTracker(t)
				b := mustNew(t, Config{Endpoints: pool(names...), Policy: p, Health: tr, PanicThreshold: tt.threshold, Seed: 1})
				eject(t, tr, tt.ejected...)
				seen := map[string]bool{}
				for range 200 {
					ep, done, err := b.Pick(context.Background(), tt.exclude)
					if tt.wantErr != "" {
						if !errors.Is(err, ErrNoEndpoint) || !errors.Is(err, sturdy.ErrUnavailable) || !strings.Contains(err.Error(), tt.wantErr) {
							t.Fatalf("Pick err = %v, want ErrNoEndpoint saying %q", err, tt.wantErr)
						}
						return
					}
					if err != nil {
						t.Fatalf("Pick: %v", err)
					}
					seen[ep.Name] = true
					done(sturdy.Outcome{Class: sturdy.Canceled}) // health ignores it
				}
				var got []string
				for n := range seen {
					got = append(got, n)
				}
				slices.Sort(got)
				if want := strings.Fields(tt.wantSeen); !slices.Equal(got, want) {
					t.Errorf("picked %v, want exactly %v", got, want)
				}
			})
		}
	}
}

func TestHealthRoundRobinSkipsEjectedInOrder(t *testing.T) {
	tr := newTracker(t)
	b := mustNew(t, Config{Endpoints: pool("a", "b", "c", "d"), Policy: RoundRobin, Health: tr, Seed: 1})
	eject(t, tr, "c")
	want := strings.Fields("a b d a b d a b d")
	if got := pickNames(t, b, len(want)); !slices.Equal(got, want) {
		t.Errorf("picks = %v, want %v", got, want)
	}
}

func TestHealthDoneFeedsTracker(t *testing.T) {
	tr, err := health.New(health.Config{MaxEjectedShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	b := mustNew(t, Config{Endpoints: pool("good", "bad"), Policy: RoundRobin, Health: tr, Seed: 1})
	for range 20 {
		ep, done, err := b.Pick(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		o := sturdy.Outcome{Class: sturdy.Success}
		if ep.Name == "bad" {
			o = sturdy.Outcome{Class: sturdy.Unavailable, Err: errDown}
		}
		done(o)
	}
	if s := tr.State("bad"); s != health.Ejected {
		t.Fatalf("bad is %v after repeated failures reported through done, want ejected", s)
	}
	if s := tr.State("good"); s != health.Healthy {
		t.Errorf("good is %v, want healthy", s)
	}
	for _, n := range pickNames(t, b, 10) {
		if n != "good" {
			t.Fatalf("picked %s after it was ejected", n)
		}
	}
}

func TestHealthEjectionEndBringsEndpointBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTracker(t)
		b := mustNew(t, Config{Endpoints: pool("a", "b", "c"), Health: tr, Seed: 1})
		eject(t, tr, "b")
		for _, n := range pickNames(t, b, 50) {
			if n == "b" {
				t.Fatal("picked b while ejected")
			}
		}
		time.Sleep(health.DefaultBaseEjection + time.Second)
		// No one asked b.Allowed; the tracker's epoch notices the end and
		// the balancer recounts.
		seen := false
		for range 50 {
			ep, done, err := b.Pick(context.Background(), []string{"a", "c"})
			if err != nil {
				t.Fatalf("Pick after the ejection ended: %v", err)
			}
			seen = seen || ep.Name == "b"
			done(sturdy.Outcome{Class: sturdy.Success, Latency: time.Millisecond})
		}
		if !seen {
			t.Error("b not picked after its ejection ended")
		}
		if s := tr.State("b"); s != health.Healthy {
			t.Errorf("b is %v after successes in probation, want healthy", s)
		}
	})
}

func TestHealthUpdateAddsAndRemovesMembers(t *testing.T) {
	tr := newTracker(t)
	b := mustNew(t, Config{Endpoints: pool("a", "b"), Health: tr, Seed: 1})
	ma := tr.Member("a")
	if ma == nil || tr.Member("b") == nil {
		t.Fatal("New did not add its endpoints to the tracker")
	}
	eject(t, tr, "a")
	if err := b.Update(pool("a", "c")); err != nil {
		t.Fatal(err)
	}
	if tr.Member("b") != nil {
		t.Error("Update kept the dropped endpoint b in the tracker")
	}
	if tr.Member("c") == nil {
		t.Error("Update did not add c to the tracker")
	}
	if tr.Member("a") != ma || tr.Allowed("a") {
		t.Error("Update replaced a's health member or forgot its ejection")
	}
	for _, n := range pickNames(t, b, 20) {
		if n != "c" {
			t.Fatalf("picked %s; a is ejected and b is gone", n)
		}
	}
}

func TestReady(t *testing.T) {
	tr := newTracker(t)
	b := mustNew(t, Config{Endpoints: pool("a", "b"), Health: tr})
	if !b.Ready() {
		t.Fatal("a healthy pool is not ready")
	}
	eject(t, tr, "a", "b")
	if b.Ready() {
		t.Fatal("a pool with every endpoint ejected is ready")
	}
	empty := mustNew(t, Config{})
	if empty.Ready() {
		t.Fatal("an empty pool is ready")
	}
	noHealth := mustNew(t, Config{Endpoints: pool("a")})
	if !noHealth.Ready() {
		t.Fatal("a pool without health is not ready")
	}
}
