// Package attempt is the one attempt loop that failover, hedging and both
// adapters share (see the request's path in package sturdy's overview).
// Within one call, a new attempt starts when the hedge timer fires or
// when an attempt fails with a class that says "retry elsewhere"; all
// attempts share the tried set,
// the per-call attempt cap and the call's deadline; the first success wins
// and the rest are cancelled, their results released through
// Spec.Cleanup. Nesting a hedge inside a retry loop would multiply
// attempts; one loop driven by both policies does not.
//
// Without hedging the loop runs every attempt on the caller's goroutine
// and allocates nothing of its own but, for an attempt with a timeout, its
// context: one allocation, whose timeout a shared deadline sweeper
// enforces (sweep.go) rather than a timer of its own. With hedging the first attempt still
// runs on the caller's goroutine and each hedge on the hedge timer's own
// goroutine (a call whose hedge never fires starts no goroutine); once an
// attempt has failed or a hedge has started, the caller's goroutine
// coordinates and retries run on goroutines of their own. Run returns only
// after every attempt it started has returned, so no goroutine outlives
// the call.
package attempt
