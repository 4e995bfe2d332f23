package health_test

import (
	"fmt"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
)

// Three replicas, each up 99% of the time: a pool that needs two of them
// to carry its load has them 99.97% of the time.
func ExampleAtLeastK() {
	fmt.Printf("%.6f\n", health.AtLeastK(2, []float64{0.99, 0.99, 0.99}))
	// Unequal availabilities are handled exactly.
	fmt.Printf("%.6f\n", health.AtLeastK(2, []float64{0.999, 0.99, 0.9}))
	// Output:
	// 0.999702
	// 0.998892
}

func ExampleTracker() {
	tr, err := health.New(health.Config{
		OnStateChange: func(sc health.StateChange) {
			fmt.Printf("%s: %s -> %s (%s)\n", sc.Endpoint, sc.From, sc.To, sc.Reason)
		},
	})
	if err != nil {
		panic(err)
	}
	a, b := tr.Add("vllm-a"), tr.Add("vllm-b")

	// A busy replica is not a sick one.
	for range 10 {
		a.Observe(sturdy.Outcome{Class: sturdy.Overloaded})
	}
	// Five failures in a row eject b.
	for range 5 {
		b.Observe(sturdy.Outcome{Class: sturdy.Unavailable})
	}
	fmt.Println("a allowed:", a.Allowed(), "b allowed:", b.Allowed())

	// A successful probe lets b back on probation; one success heals it.
	b.ProbeResult(nil)
	b.Observe(sturdy.Outcome{Class: sturdy.Success})
	fmt.Println("b:", b.State())
	// Output:
	// vllm-b: healthy -> ejected (consecutive_failures)
	// a allowed: true b allowed: false
	// vllm-b: ejected -> probation (probe_success)
	// vllm-b: probation -> healthy (success)
	// b: healthy
}
