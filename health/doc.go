// Package health keeps the health state of the endpoints of a pool, so
// that a balancer sends no traffic to a model server that is down, and
// reports how available each endpoint has been.
//
// # The problem
//
// A replica that crashed, lost its GPU or was handed a bad credential
// fails every call sent to it, and a client that keeps picking it turns
// one sick server into a share of failed user requests. A replica that is
// merely busy (429, RESOURCE_EXHAUSTED) is a different matter: taking it
// out would push its load onto the others and could cascade. The tracker
// has to tell the two apart, take the sick one out quickly, and let it back
// in carefully.
//
// # The model
//
// A Tracker holds one Member per endpoint name, each in one of three
// states:
//
//	Healthy ──failures──▶ Ejected ──time or probe success──▶ Probation ──successes──▶ Healthy
//	                         ▲                                   │
//	                         └──────────── one failure ──────────┘
//
// Passive outlier detection, after Envoy's outlier detection and gRFC
// A50: outcomes are reported with Observe, and a Healthy member is ejected
// after Config.ConsecutiveFailures failures in a row, or when at least
// Config.FailureRate of the at least Config.MinCalls calls in the last
// Config.Window failed (a success counts as of its Outcome.End, when the
// endpoint answered; a failure as of its report). Only outcomes that speak of the endpoint count:
// sturdy.Success, and the failure classes (Unavailable, Timeout, Auth).
// Overloaded is saturation, not sickness, and never ejects; TooLarge,
// Fatal and Canceled speak of the request. Auth ejects at once: the
// endpoint's credential is bad.
//
// The n-th ejection lasts min(n × BaseEjection, MaxEjection), so a member
// that keeps failing stays out longer each time; n decays by one for each
// BaseEjection the member spends healthy, as Envoy's multiplier does. No
// more than max(1, floor(MaxEjectedShare × members)) members are ejected
// passively at once (Envoy's max_ejection_percent), so a fault of the
// client's own, which makes every endpoint look bad, cannot empty the pool.
//
// When its ejection ends a member enters Probation, the half-open state of
// gobreaker's circuit breaker: it takes traffic again, its first failure
// re-ejects it, and Config.ProbationSuccesses successes make it Healthy.
// There are no timer goroutines: the end of an ejection is noticed by the
// next call that looks at the clock (Allowed, Observe, State, Epoch).
//
// Active probing is optional: RunProbes calls a Prober (HTTPProber for
// servers with a health path) for every endpoint at an interval. A probe
// failure ejects at once, beyond the ejected share, since the endpoint is
// known to be down and a balancer should see it (and enter panic mode if
// too much of the pool is); a probe success ends an ejection early, as a
// gRFC A17 health check reports SERVING.
//
// # Figures
//
// Every member keeps its state history as Availability: uptime and
// downtime, failures (ejections), MTBF, MTTR and availability.
// AtLeastK turns per-endpoint availabilities into the probability that at
// least k endpoints of the pool are up at once.
//
// # Using it
//
// A balancer keeps the *Member of each endpoint, asks Member.Allowed
// before a pick (two atomic loads while healthy and not cooling down) and
// reports each attempt's outcome with Member.Observe; neither allocates,
// and a healthy member's success takes no lock. Tracker.Epoch tells it
// cheaply when the set of allowed members may have changed. Transitions
// are reported to Config.OnStateChange, never under a lock.
package health
