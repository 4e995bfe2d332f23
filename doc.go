// Package sturdy keeps AI-inference clients up when the model servers
// behind them are slow, overloaded, rate-limited or down.
//
// sturdy lives inside the client process: no proxy, no extra network hop.
// A Go program that calls an OpenAI-compatible HTTP API or a gRPC
// inference service wraps its http.RoundTripper (package httpmw) or adds
// two gRPC client interceptors (package grpcmw), and gets client-side load
// balancing, failover, hedged requests, rate limits with degradation to
// fallback models, health tracking with availability figures, and
// OpenTelemetry traces and metrics.
//
// # The request's path
//
//	caller (openai-go, http.Client, grpc stub)
//	  └─ adapter: httpmw.Transport / grpcmw interceptors
//	       copy the request per attempt, make body replayable, classify responses,
//	       rewrite host/model, spans + metrics
//	       └─ degrade.Chain: tier 0 = primary model, tier 1.. = fallbacks
//	            └─ ratelimit: admission for the tier (requests/s, tokens/min,
//	               server cooldowns)
//	                 └─ hedge + failover: attempts, each on an endpoint
//	                    not yet tried (one shared attempt loop)
//	                      └─ balancer.Pick(excluding tried) over endpoints
//	                         that health allows
//	                           └─ one attempt → Outcome → health, balancer,
//	                              ratelimit, telemetry
//
// # Packages
//
//   - sturdy (this package): the shared vocabulary — Endpoint, Outcome,
//     the outcome classes (Class), the typed *Error that lists every
//     attempt of a failed call, and Retry-After parsing.
//   - health: per-endpoint state (healthy, ejected, probation) from
//     passive outlier detection and active probes, and availability
//     figures (MTBF, MTTR, availability, k-of-n pool estimate).
//   - balancer: round-robin, smooth weighted round-robin,
//     least-outstanding and P2C Peak-EWMA (the default), health-aware,
//     with a panic threshold.
//   - ratelimit: requests/s and tokens/min admission per key, server
//     cooldowns, and adaptive client-side throttling.
//   - failover: retrying elsewhere with backoff, Retry-After and a retry
//     budget.
//   - hedge: hedged requests with a fixed or adaptive delay and a budget.
//   - degrade: a chain of model tiers, fallback triggers and
//     service-quality accounting.
//   - httpmw and grpcmw: the adapters that compose all of the above.
//
// # Outcome classes
//
// Every attempt ends in one Outcome whose Class decides what each policy
// does with it: Success, Unavailable (5xx, refused, reset), Overloaded
// (429, 529, 503 with Retry-After: retry elsewhere, but not a health
// failure), Timeout, TooLarge (the context window is exceeded: fall back
// to a larger model), Auth (401/403: this endpoint's credential is bad),
// Fatal (other 4xx: returned as is) and Canceled (the caller gave up).
package sturdy
