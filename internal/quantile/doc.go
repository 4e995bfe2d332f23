// Package quantile is a small streaming quantile sketch of recent
// latencies, used by hedging to pick its delay (a high quantile of recent
// attempt latencies, as in The Tail at Scale).
//
// The sketch is a log-linear histogram (the layout of HdrHistogram with 16
// sub-buckets per power of two, so any quantile is within 1/16 ≈ 6% of
// the true value) over two rotating windows of Window observations each: a
// quantile is read over the current and the previous window, so it follows
// the last Window to 2×Window observations. Add is lock-free and does not
// allocate; Quantile scans the buckets (a few hundred), so callers cache it.
package quantile
