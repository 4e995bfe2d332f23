package degrade

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Attempt describes one attempt: its endpoint, kind (first, retry,
// hedge), number within the call and tier index.
type Attempt = attempt.Info

// Hooks observe attempts (for spans and metrics). Either field may be nil.
type Hooks = attempt.Hooks

// Tier is one model of the chain.
type Tier struct {
	// Name identifies the tier in errors, spans and metrics. Unique and
	// low-cardinality. Empty means "tier<i>".
	Name string
	// Model is the model this tier serves; adapters rewrite requests to
	// it (the "model" field of an OpenAI-style body).
	Model string
	// Quality is the tier's answer quality in [0, 1], used only for the
	// expected-quality figure. Zero means 1.
	Quality float64
	// ContextWindow is the tier's context window in tokens. A too-large
	// outcome moves the call to a later tier with a larger window; a call
	// whose PromptTokens exceed it skips the tier. Zero means unknown.
	ContextWindow int
	// Picker chooses the tier's endpoints; usually a *balancer.Balancer.
	// Required. If it has a Ready() bool method (balancer does), a tier
	// whose Ready reports false is skipped unless it is the last.
	Picker failover.Picker
	// Limiter admits calls to this tier; nil means no admission control.
	Limiter *ratelimit.Limiter
	// LimitKey is the key under which the tier is limited. Empty means Name.
	LimitKey string
	// Timeout is the tier's latency objective: a call that this tier has
	// not answered within it moves to the next tier. Zero means none.
	Timeout time.Duration
	// Retry is the tier's failover policy; nil means Config.Retry.
	Retry *failover.Policy
	// Hedge is the tier's hedging policy; nil means Config.Hedge. Give
	// each tier its own adaptive policy when the tiers' latencies differ.
	Hedge *hedge.Policy
}

// Config configures a Chain.
type Config struct {
	// Tiers are the chain, primary first. At least one.
	Tiers []Tier
	// Retry is the failover policy within a tier; nil means one attempt
	// per tier.
	Retry *failover.Policy
	// Hedge is the hedging policy within a tier; nil means no hedging.
	Hedge *hedge.Policy
	// MaxWait is how long a call may wait for a limiter when every tier's
	// limiter refuses it. Zero means no waiting: the call fails at once
	// with the soonest time to come back.
	MaxWait time.Duration
	// Hooks observe every attempt; nil means none.
	Hooks *Hooks
	// OnFallback is called when a call leaves a tier for a later one. It
	// runs on the call's goroutine and must be quick. Nil means none.
	OnFallback func(Fallback)
}

// Fallback describes a call leaving one tier for another.
type Fallback struct {
	From, To int    // tier indexes
	Reason   Reason // why it left
}

// Reason says why a call left a tier.
type Reason string

// Reasons a call leaves a tier.
const (
	ReasonLimited       Reason = "limited"        // the tier's limiter refused
	ReasonUnhealthy     Reason = "unhealthy"      // no endpoint of the tier is allowed
	ReasonFailed        Reason = "failed"         // failover within the tier was exhausted
	ReasonTooLarge      Reason = "too_large"      // the request exceeds the tier's context window
	ReasonContextWindow Reason = "context_window" // skipped: the prompt is known to exceed the window
	ReasonSlow          Reason = "slow"           // the tier missed its latency objective
)

type tier struct {
	Tier
	index   int
	key     string
	quality float64
	ready   func() bool
	spec    attempt.Spec // full policies
	// fast is spec without waiting for a server's Retry-After, for a call
	// that has a later tier to try now (Run comes back if none can take it).
	fast   attempt.Spec
	single attempt.Spec // one attempt: for requests that cannot be replayed
	served atomic.Uint64
}

// Chain is a fallback chain of tiers. It is safe for concurrent use.
type Chain struct {
	tiers      []*tier
	maxWait    time.Duration
	onFallback func(Fallback)
	failed     atomic.Uint64
	fallbacks  atomic.Uint64
}

// New returns a Chain, or an error for a configuration that cannot work.
func New(cfg Config) (*Chain, error) {
	if len(cfg.Tiers) == 0 {
		return nil, errors.New("degrade: Config.Tiers is empty; give at least the primary tier")
	}
	if cfg.MaxWait < 0 {
		return nil, fmt.Errorf("degrade: MaxWait is %v; it must not be negative", cfg.MaxWait)
	}
	c := &Chain{maxWait: cfg.MaxWait, onFallback: cfg.OnFallback}
	seen := map[string]bool{}
	for i, t := range cfg.Tiers {
		if t.Name == "" {
			t.Name = fmt.Sprintf("tier%d", i)
		}
		switch {
		case seen[t.Name]:
			return nil, fmt.Errorf("degrade: Tiers[%d].Name %q is used twice; tier names must be unique", i, t.Name)
		case t.Picker == nil:
			return nil, fmt.Errorf("degrade: Tiers[%d] (%s) has no Picker; give it a balancer of its endpoints", i, t.Name)
		case t.Quality < 0 || t.Quality > 1:
			return nil, fmt.Errorf("degrade: Tiers[%d].Quality is %v; it must be in [0, 1]", i, t.Quality)
		case t.ContextWindow < 0:
			return nil, fmt.Errorf("degrade: Tiers[%d].ContextWindow is %d; it must not be negative", i, t.ContextWindow)
		case t.Timeout < 0:
			return nil, fmt.Errorf("degrade: Tiers[%d].Timeout is %v; it must not be negative", i, t.Timeout)
		}
		seen[t.Name] = true
		in := &tier{Tier: t, index: i, key: t.LimitKey, quality: t.Quality}
		if in.key == "" {
			in.key = t.Name
		}
		if in.quality == 0 {
			in.quality = 1
		}
		if r, ok := t.Picker.(interface{ Ready() bool }); ok {
			in.ready = r.Ready
		}
		retry, hg := t.Retry, t.Hedge
		if retry == nil {
			retry = cfg.Retry
		}
		if hg == nil {
			hg = cfg.Hedge
		}
		in.spec = attempt.Spec{Picker: t.Picker, Hooks: cfg.Hooks, Op: "degrade", Tier: i}
		if retry != nil {
			in.spec.Retry = retry
		}
		if hg != nil {
			in.spec.Hedge = hg
		}
		in.single = attempt.Spec{Picker: t.Picker, Hooks: cfg.Hooks, Op: "degrade", Tier: i}
		in.fast = in.spec
		in.fast.NoRetryAfterWait = true
		c.tiers = append(c.tiers, in)
	}
	return c, nil
}

// Tier returns the configuration of tier i.
func (c *Chain) Tier(i int) Tier { return c.tiers[i].Tier }

// Len returns the number of tiers.
func (c *Chain) Len() int { return len(c.tiers) }

// Stats is the chain's accounting since New.
type Stats struct {
	Served    []uint64  // calls served by each tier
	Shares    []float64 // Served[i] / Σ Served: the share r_i of each tier
	Failed    uint64    // calls no tier served
	Fallbacks uint64    // times a call left a tier for a later one
	// ExpectedQuality is Σ Shares[i] × Quality[i] over served calls; 1
	// before any call is served.
	ExpectedQuality float64
}

// Stats returns the chain's accounting.
func (c *Chain) Stats() Stats {
	s := Stats{
		Served:    make([]uint64, len(c.tiers)),
		Shares:    make([]float64, len(c.tiers)),
		Failed:    c.failed.Load(),
		Fallbacks: c.fallbacks.Load(),
	}
	var total uint64
	q := make([]float64, len(c.tiers))
	for i, t := range c.tiers {
		s.Served[i] = t.served.Load()
		total += s.Served[i]
		q[i] = t.quality
	}
	s.ExpectedQuality = 1
	if total > 0 {
		for i := range s.Served {
			s.Shares[i] = float64(s.Served[i]) / float64(total)
		}
		s.ExpectedQuality = ExpectedQuality(s.Shares, q)
	}
	return s
}

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
