package degrade_test

import (
	"context"
	"fmt"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/ratelimit"
)

func Example() {
	primary, _ := balancer.New(balancer.Config{Endpoints: []sturdy.Endpoint{{Name: "gpt-4o-east"}}})
	fallback, _ := balancer.New(balancer.Config{Endpoints: []sturdy.Endpoint{{Name: "gpt-4o-mini"}}})
	// The primary admits one call per second; the second call in a burst
	// is served by the fallback model instead of waiting.
	chain, _ := degrade.New(degrade.Config{Tiers: []degrade.Tier{
		{Name: "primary", Model: "gpt-4o", Quality: 0.95, Picker: primary, Limit: ratelimit.Limit{RequestsPerSecond: 1, Burst: 1}},
		{Name: "fallback", Model: "gpt-4o-mini", Quality: 0.90, Picker: fallback},
	}})
	for range 2 {
		answer, err := degrade.Do(context.Background(), chain, func(ctx context.Context, tier degrade.Tier, ep *sturdy.Endpoint) (string, error) {
			return tier.Model + " via " + ep.Name, nil
		})
		fmt.Println(answer, err)
	}
	s := chain.Stats()
	fmt.Printf("shares %.2f, expected quality %.3f\n", s.Shares, s.ExpectedQuality)
	// Output:
	// gpt-4o via gpt-4o-east <nil>
	// gpt-4o-mini via gpt-4o-mini <nil>
	// shares [0.50 0.50], expected quality 0.925
}

func ExampleExpectedQuality() {
	// 5% of calls answered by a fallback of quality 0.90, the rest by a
	// primary of quality 0.95: (1 − r)·Q + r·Q′.
	fmt.Printf("%.4f\n", degrade.ExpectedQuality([]float64{0.95, 0.05}, []float64{0.95, 0.90}))
	// Output: 0.9475
}
