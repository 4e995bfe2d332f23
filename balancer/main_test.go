package balancer

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var allPolicies = []Policy{P2CPeakEWMA, RoundRobin, WeightedRoundRobin, LeastOutstanding, PrefixAffinity}

// pool returns endpoints with the given names (weight 0, i.e. 1).
func pool(names ...string) []sturdy.Endpoint {
	eps := make([]sturdy.Endpoint, len(names))
	for i, n := range names {
		eps[i] = sturdy.Endpoint{Name: n, Address: "http://" + n}
	}
	return eps
}

func mustNew(t testing.TB, cfg Config) *Balancer {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// pickName picks, reports success at once and returns the endpoint's name.
func pickName(t testing.TB, b *Balancer, exclude ...string) string {
	t.Helper()
	ep, done, err := b.Pick(context.Background(), exclude)
	if err != nil {
		t.Fatalf("Pick(exclude %v): %v", exclude, err)
	}
	done(sturdy.Outcome{Class: sturdy.Success})
	return ep.Name
}

func pickNames(t testing.TB, b *Balancer, n int, exclude ...string) []string {
	t.Helper()
	got := make([]string, n)
	for i := range got {
		got[i] = pickName(t, b, exclude...)
	}
	return got
}
