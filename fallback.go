package sturdy

// Fallback describes a call leaving one tier of a fallback chain for a
// later one (package degrade, and the adapters' tiers).
type Fallback struct {
	From, To string         // the tiers' names
	Reason   FallbackReason // why the call left From
}

// FallbackReason says why a call left a tier.
type FallbackReason string

// Reasons a call leaves a tier.
const (
	FallbackLimited       FallbackReason = "limited"        // the tier's limiter or throttle refused
	FallbackUnhealthy     FallbackReason = "unhealthy"      // no endpoint of the tier is allowed by health
	FallbackFailed        FallbackReason = "failed"         // failover within the tier was exhausted
	FallbackTooLarge      FallbackReason = "too_large"      // the request exceeds the tier's context window
	FallbackContextWindow FallbackReason = "context_window" // skipped: the prompt is known to exceed the window
	FallbackSlow          FallbackReason = "slow"           // the tier missed its latency objective
)
