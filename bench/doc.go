// Package bench holds sturdy's benchmarks against its peers (failsafe-go,
// plain round-robin, grpc-go's own policies). It is a module of its own so
// that the peers never enter the library's go.mod.
//
// policy_test.go runs each core policy alone beside its failsafe-go peer;
// overhead_test.go measures the adapters' success-path overhead (httpmw
// beside failsafehttp, grpcmw beside failsafegrpc) and Pick+Done of every
// balancer beside a plain atomic round-robin; telemetry_test.go measures
// sturdy's spans and metrics with the OpenTelemetry SDK beside otelhttp's. Package sim holds the load
// simulations over fake model servers on loopback, with a smoke test for
// CI; cmd/sim runs them, and cmd/all runs everything and writes
// BENCHMARKS.md and bench/plots/*.png from what it measured. Package kvsim
// simulates cache-aware routing (PrefixAffinity beside cache-blind
// policies and an oracle) over modelled vLLM replicas in virtual time;
// cmd/kvsim writes its report, bench/kvsim/report/KVSIM.md:
//
//	go run ./bench/cmd/all
//	go run ./bench/cmd/kvsim -out bench/kvsim/report
package bench
