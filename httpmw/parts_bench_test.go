package httpmw

import (
	"net/http"
	"testing"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/ratelimit"
)

// BenchmarkRoundTripSturdyWithout is BenchmarkRoundTripSturdy with one
// default turned off at a time, and all of them at once ("skeleton": the
// tiers, routing, classification, bodies and telemetry alone), so that
// what each default costs per call is the difference from "defaults" in
// the same run:
//
//	go test -run '^$' -bench 'RoundTripSturdyWithout' -benchmem -count 6 ./httpmw
func BenchmarkRoundTripSturdyWithout(b *testing.B) {
	noTimeout := WithFailover(failover.Config{AttemptTimeout: -1})
	roundRobin := WithBalancer(balancer.Config{Policy: balancer.RoundRobin})
	noHealth := WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1})
	noLearning := WithLimiter(ratelimit.Config{Learn: ratelimit.LearnConfig{Off: true}})
	for _, c := range []struct {
		name string
		opts []Option
	}{
		{"defaults", nil},
		{"attempt-timeout", []Option{noTimeout}},
		{"p2c", []Option{roundRobin}},
		{"health", []Option{noHealth}},
		{"learning", []Option{noLearning}},
		{"skeleton", skeletonOptions()},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := append([]Option{WithTier(degrade.Tier{Name: "primary", Model: "m"},
				URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
				URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
			), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil))}, c.opts...)
			tr, err := NewTransport(stubTransport{}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			runBench(b, tr)
		})
	}
}

// skeletonOptions turn off every default that BenchmarkRoundTripSturdyWithout
// measures: the attempt timeout, P2C, health and learning.
func skeletonOptions() []Option {
	return []Option{
		WithFailover(failover.Config{AttemptTimeout: -1}),
		WithBalancer(balancer.Config{Policy: balancer.RoundRobin}),
		WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
		WithLimiter(ratelimit.Config{Learn: ratelimit.LearnConfig{Off: true}}),
	}
}
