// Package failover retries a failed call on another endpoint.
//
// A call that fails with a class that says "retry elsewhere" (unavailable,
// overloaded, timeout, auth; see sturdy.Class) runs again on an endpoint
// the call has not tried yet, chosen by the balancer with the tried set
// excluded, up to Config.MaxAttempts attempts in all. Between attempts it
// waits a full-jitter exponential backoff (AWS Architecture Blog,
// "Exponential Backoff And Jitter"); a server's Retry-After takes that
// endpoint out of the call, and is waited for only when no untried
// endpoint is left, the wait is under Config.MaxRetryAfterWait and it ends
// before the caller's deadline. No wait ever runs past the deadline.
//
// Retries are paid from a budget shared by every call through one Policy,
// counted over a sliding window as Finagle's RetryBudget and Envoy's retry
// budget do. By default the budget learns whether retries help, in the
// spirit of gRPC's retry throttling (gRFC A6, a token bucket drained by
// failures and refilled by successes): it allows Config.BudgetMinPerSecond
// retries per second (default 3/s) plus up to Config.BudgetMaxRatio
// retries per call (default 1), scaled by the success rate of recent
// retries. Random failures that a retry cures open the budget; an outage,
// where retries fail too, closes it down to the floor, so that it costs
// little more than one attempt per call instead of MaxAttempts (the SRE
// book's "Handling Overload": 3× becomes 1.1× with a 10% budget; this one
// stays under that once calls outnumber ten times the floor). Answers that
// say the servers are overloaded close it as well. Config.BudgetRatio
// fixes the ratio instead (0.1: the SRE book's flat 10%).
//
// Each attempt that another may follow is bounded by an attempt timeout
// learned from the policy's recent successful latencies (3 × p99, at
// least 250ms, once 100 are in), so that a stuck endpoint costs a
// failover rather than the call; the last attempt runs to the caller's
// deadline. Config.AttemptTimeout fixes it or turns it off.
//
// When it gives up, the error is a *sturdy.Error listing every attempt.
//
// Policy is what the adapters (httpmw, grpcmw) hand to their shared attempt
// loop; Do runs one call under it alone. Do not nest failover.Do and
// hedge.Do: the adapters drive one loop with both policies so that attempts
// are never multiplied.
package failover
