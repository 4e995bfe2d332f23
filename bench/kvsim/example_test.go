package kvsim_test

import (
	"fmt"

	"github.com/sturdyai/sturdy/bench/kvsim"
)

// Run one workload under two clients on the same arrivals and compare
// their prefix-cache hit rates.
func ExampleRun() {
	w := kvsim.SharedContext(1, 0.25) // a quarter of the published duration
	rr, err := kvsim.Run(&w, kvsim.DefaultHardware, kvsim.Balancer("round-robin", kvsim.RoundRobinConfig, 1), 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	aff, err := kvsim.Run(&w, kvsim.DefaultHardware, kvsim.Balancer("prefix-affinity", kvsim.AffinityConfig, 1), 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("prefix-affinity hits at least twice as often:", aff.HitRate >= 2*rr.HitRate)
	// Output: prefix-affinity hits at least twice as often: true
}
