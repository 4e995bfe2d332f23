// Package budget keeps the share of extra work (retries, hedges) that a
// policy may add on top of its calls, in the manner of Finagle's
// RetryBudget and Envoy's retry budget: every call deposits Ratio of a
// token, every extra attempt withdraws one, and a floor of MinPerSecond
// tokens is always available so that a quiet client can still retry.
// Deposits and withdrawals are counted over a sliding window (TTL), so a
// burst of calls long ago does not pay for retries now.
//
// With every endpoint failing, extra attempts are bounded by
// Ratio × calls + MinPerSecond × TTL-seconds in any TTL window: the SRE
// book's "3× becomes 1.1×" for Ratio = 0.1.
//
// Learning is the budget failover uses by default: its ratio is not fixed
// but learned from whether retries succeed (see its doc), in the spirit of
// gRPC's retry throttling (gRFC A6), whose token bucket is drained by
// failures and refilled by successes. In an outage it allows only the
// floor; with random failures that retries cure, up to MaxRatio per call.
package budget
