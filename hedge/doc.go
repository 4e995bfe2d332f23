// Package hedge sends a second copy of a slow call to another endpoint and
// takes whichever answers first, as in Dean and Barroso's "The Tail at
// Scale" (CACM 2013): "defer sending a secondary request until the first
// request has been outstanding for more than the 95th-percentile expected
// latency", which cut their 99.9th percentile from 1,800 ms to 74 ms for
// 2% more requests.
//
// The delay is fixed (Config.Delay) or adaptive: a quantile (default p95)
// of recent successful attempt latencies, read from a small streaming
// sketch, with a minimum sample count before the policy hedges at all.
// Hedges are paid from a budget (default 5% of calls, counted over a
// sliding window, plus 1 per second) so that a saturated pool is not
// handed more load when it slows down. The first success wins; the other
// attempts are cancelled through their contexts at once, to stop the
// servers' work, and their results released through a cleanup hook
// (httpmw closes a losing body there). An error from one attempt does not
// end the call while another is still running. The first attempt runs on
// the caller's goroutine, so a call whose hedge never fires starts none.
//
// Policy is what the adapters (httpmw, grpcmw) hand to their shared
// attempt loop, which also runs failover; Do runs one call under it alone.
package hedge
