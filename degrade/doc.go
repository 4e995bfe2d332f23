// Package degrade keeps a call answered when its model cannot serve it, by
// falling back along a chain of model tiers: tier 0 is the primary model,
// later tiers are fallback models (cheaper, smaller, another provider),
// each with its own endpoints, its own rate limiter and a quality score.
//
// A call moves to the next tier when the tier cannot serve it: its limiter
// refuses, no endpoint is allowed by health, failover within the tier is
// exhausted, the request is too large for the tier's context window (it
// then moves to a tier with a larger one), or the tier misses its latency
// objective (Tier.Timeout). A tier whose limiter or health already says no
// is skipped before any attempt is spent on it. Every call starts again at
// tier 0, so traffic goes back to the primary as soon as it can serve.
//
// Within a tier, attempts run in the one attempt loop that failover and
// hedge share (package sturdy's overview, "the request's path"); degrade is the layer the
// adapters (httpmw, grpcmw) call.
//
// Accounting: Stats gives the share r_i of calls served by each tier and
// the expected service quality Σ r_i·Q_i, for two tiers (1 − r)·Q + r·Q′
// — a primary of quality 0.95 with 5% of calls on a 0.90 fallback gives
// 0.9475. The model follows LiteLLM's fallbacks (including
// context-window fallbacks), Portkey and OpenRouter's "models" list.
package degrade
