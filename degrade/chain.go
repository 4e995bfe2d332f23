package degrade

import (
	"context"
	"fmt"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Tier is one model of a fallback chain. The adapters (httpmw, grpcmw)
// take the same Tier in their WithTier option, with the tier's endpoints
// beside it.
type Tier struct {
	// Name identifies the tier in errors, spans, metrics and the limiter's
	// keys. Unique and low-cardinality. Empty means "tier<i>".
	Name string
	// Model is the model this tier serves. The adapters send a request to
	// a later tier (a fallback) with its model rewritten to Model (for
	// OpenAI-style JSON bodies, the top-level "model" field); tier 0 gets
	// the request as the caller wrote it. Empty means no rewrite: a later
	// tier without Model behind a tier 0 with one is a configuration
	// error (the fallback would get the primary's model) unless SameModel
	// says it serves that model too.
	Model string
	// SameModel marks a later tier without Model as serving the model the
	// caller asked for (another deployment of the same model), so that
	// sending it the request as written is meant.
	SameModel bool
	// Quality is the tier's answer quality in [0, 1], used only for the
	// expected-quality figure. Zero means 1.
	Quality float64
	// ContextWindow is the tier's context window in tokens. A too-large
	// outcome moves the call to a later tier whose window is larger or
	// unknown; a call whose prompt is known to exceed it skips the tier.
	// Zero means unknown: the adapters then learn it, for a tier with a
	// Model, from the first too-large answer that names it ("maximum
	// context length is 4096 tokens"). A configured window wins over a
	// learned one.
	ContextWindow int
	// Timeout is the tier's latency objective: a call that this tier has
	// not answered within it (for HTTP, the headers and first body byte)
	// moves to the next tier. Zero means none. The last tier has none.
	Timeout time.Duration
	// Limit is the tier's client-side admission: requests per second and
	// tokens per minute, keyed by the tier's Name in the chain's limiter.
	// The zero Limit admits everything (a server's 429 Retry-After still
	// pauses the tier).
	Limit ratelimit.Limit
	// Failover is the tier's own failover policy. Nil means the chain's
	// (Config.Failover, or the adapter's WithFailover). Each tier gets a
	// policy, and so a retry budget, of its own.
	Failover *failover.Config
	// Hedge is the tier's own hedging policy. Nil means the chain's
	// (Config.Hedge, or the adapter's WithHedge); a Hedge whose MaxHedges
	// is negative turns hedging off for this tier. Each tier gets a policy
	// of its own, since tiers' latencies differ.
	Hedge *hedge.Config
	// Picker chooses the tier's endpoints, usually a *balancer.Balancer.
	// Required by New; the adapters fill it and refuse one given to them.
	// If it has a Ready() bool method (balancer does), a tier whose Ready
	// reports false is skipped unless it is the last.
	Picker sturdy.Picker
}

// The internal chain takes a Tier as it is.
var _ = chain.TierConfig(Tier{})

// Config configures a Chain.
type Config struct {
	// Tiers are the chain, primary first. At least one.
	Tiers []Tier
	// Failover is the failover policy of each tier that has none of its
	// own. The zero Config means failover's defaults (3 attempts, 10%
	// retry budget); MaxAttempts 1 turns retries off.
	Failover failover.Config
	// Hedge is the hedging policy of each tier that has none of its own.
	// Nil means no hedging.
	Hedge *hedge.Config
	// Limiter is the chain's rate limiter's settings (a shared Store for
	// fleet-wide limits, MaxKeys, a Default for keys no tier names). Each
	// tier's Limit is added to its Overrides under the tier's Name.
	Limiter ratelimit.Config
	// Throttle turns on the SRE book's adaptive throttling, one Throttle
	// per tier: a tier whose calls its servers keep refusing is skipped
	// locally for a share of calls. Nil means none.
	Throttle *ratelimit.ThrottleConfig
	// MaxWait is how long a call may wait for a limiter when every tier's
	// limiter refuses it. Zero means no waiting: the call fails at once
	// with the soonest time to come back.
	MaxWait time.Duration
	// OnAttempt is called once for every attempt, when it ends (a winner's
	// when the call releases it), on the goroutine that ended it. It must
	// be quick and must not block. Nil means none.
	OnAttempt func(sturdy.Attempt)
	// OnFallback is called when a call leaves a tier for a later one, on
	// the call's goroutine. It must be quick. Nil means none.
	OnFallback func(sturdy.Fallback)
}

// Chain is a fallback chain of tiers. It is safe for concurrent use.
type Chain struct {
	c *chain.Chain
}

// New returns a Chain, or an error naming every field of cfg that cannot
// work.
func New(cfg Config) (*Chain, error) {
	cc := chain.Config{
		Failover: cfg.Failover, Hedge: cfg.Hedge, Limiter: cfg.Limiter, Throttle: cfg.Throttle,
		MaxWait: cfg.MaxWait, OnAttempt: cfg.OnAttempt,
		Names: chain.Names{
			Op:       "degrade",
			Tiers:    "Config.Tiers",
			Tier:     func(i int, _ string) string { return fmt.Sprintf("Tiers[%d]", i) },
			Failover: "Config.Failover", Hedge: "Config.Hedge", Limiter: "Config.Limiter",
			Throttle: "Config.Throttle", MaxWait: "Config.MaxWait",
		},
	}
	for _, t := range cfg.Tiers {
		cc.Tiers = append(cc.Tiers, chain.TierConfig(t))
	}
	var c *chain.Chain // set before any call can fall back
	if on := cfg.OnFallback; on != nil {
		cc.OnFallback = func(from, to int, r sturdy.FallbackReason) {
			on(sturdy.Fallback{From: c.Tier(from).Name, To: c.Tier(to).Name, Reason: r})
		}
	}
	c, err := chain.New(&cc)
	if err != nil {
		return nil, err
	}
	return &Chain{c: c}, nil
}

// Tier returns the configuration of tier i, its Name defaulted.
func (c *Chain) Tier(i int) Tier { return Tier(c.c.Tier(i)) }

// Len returns the number of tiers.
func (c *Chain) Len() int { return c.c.Len() }

// Stats is the chain's accounting since New.
type Stats struct {
	Served    []uint64  // calls served by each tier
	Shares    []float64 // Served[i] / Σ Served: the share r_i of each tier
	Failed    uint64    // calls no tier served
	Fallbacks uint64    // times a call left a tier for a later one
	// ExpectedQuality is Σ Shares[i] × Quality[i] over served calls; 1
	// before any call is served.
	ExpectedQuality float64
	// Failover and Hedge are each tier's policy counters (retries and
	// hedges allowed and refused by their budgets); a tier that does not
	// hedge has zero Hedge stats.
	Failover []failover.Stats
	Hedge    []hedge.Stats
}

// Stats returns the chain's accounting.
func (c *Chain) Stats() Stats { return Stats(c.c.Stats()) }

// ExpectedQuality returns Σ shares[i] × quality[i]: the expected quality of
// service when a share r_i of calls is answered by a tier of quality Q_i.
// For two tiers it is (1 − r)·Q + r·Q′. Shares should sum to 1.
func ExpectedQuality(shares, quality []float64) float64 {
	var e float64
	for i := range min(len(shares), len(quality)) {
		e += shares[i] * quality[i]
	}
	return e
}

// Do runs fn through the chain: fn gets the tier and endpoint of each
// attempt, and its error is classified with sturdy.ClassOf (return a
// *sturdy.Error to say the class and Retry-After yourself). On failure
// the error is a *sturdy.Error that lists every attempt of every tier.
func Do[T any](ctx context.Context, c *Chain, fn func(ctx context.Context, tier Tier, ep *sturdy.Endpoint) (T, error)) (T, error) {
	call := chain.Call[T]{Fn: func(ctx context.Context, a attempt.Info) (T, sturdy.Outcome) {
		v, err := fn(ctx, Tier(c.c.Tier(a.Tier)), a.Endpoint)
		return v, sturdy.OutcomeOf(err)
	}}
	var s chain.Served
	v, err := chain.Run(ctx, c.c, &call, &s)
	s.Release(-1)
	return v, err
}
