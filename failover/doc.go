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
// Retries are paid from a budget shared by every call through one Policy:
// at most Config.BudgetRatio extra attempts per call (default 10%) plus
// Config.BudgetMinPerSecond (default 3/s), counted over a sliding window,
// as Finagle's RetryBudget and Envoy's retry budget do. A total outage
// then costs about 1.1 attempts per call instead of MaxAttempts (the SRE
// book's "Handling Overload": 3× becomes 1.1×).
//
// When it gives up, the error is a *sturdy.Error listing every attempt.
//
// Policy is what the adapters (httpmw, grpcmw) hand to their shared attempt
// loop; Do runs one call under it alone. Do not nest failover.Do and
// hedge.Do: the adapters drive one loop with both policies so that attempts
// are never multiplied.
package failover
