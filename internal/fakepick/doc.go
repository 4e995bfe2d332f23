// Package fakepick has Pickers for the tests of the packages that drive
// the attempt loop (failover, hedge, degrade, internal/attempt,
// internal/chain): Ring, round-robin, which honours the exclusion list,
// can pretend its pool is not ready, and records every outcome reported
// to it; and One, which does nothing but pick its endpoint, for
// benchmarks.
package fakepick
