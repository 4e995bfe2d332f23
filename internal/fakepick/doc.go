// Package fakepick is a round-robin Picker for the tests of the packages
// that drive the attempt loop (failover, hedge, degrade, internal/attempt):
// it honours the exclusion list, can pretend its pool is not ready, and
// records every outcome reported to it.
package fakepick
