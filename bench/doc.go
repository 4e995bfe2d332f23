// Package bench holds sturdy's benchmarks against its peers (failsafe-go,
// plain round-robin, grpc-go's own policies). It is a module of its own so
// that the peers never enter the library's go.mod.
//
// policy_test.go runs each core policy alone beside its failsafe-go peer;
// overhead_test.go measures the adapters' success-path overhead (httpmw
// beside failsafehttp, grpcmw beside failsafegrpc) and Pick+Done of every
// balancer beside a plain atomic round-robin. Package sim holds the load
// simulations over fake model servers on loopback, with a smoke test for
// CI; cmd/sim runs them, and cmd/all runs everything and writes
// BENCHMARKS.md and bench/plots/*.png from what it measured:
//
//	go run ./bench/cmd/all
package bench
