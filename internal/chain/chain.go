package chain

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/policy"
	"github.com/sturdyai/sturdy/ratelimit"
)

// TierConfig is degrade.Tier, field for field: degrade and the pipeline
// convert one to the other, so the field docs live there, once.
type TierConfig struct {
	Name          string
	Model         string
	SameModel     bool
	Quality       float64
	ContextWindow int
	Timeout       time.Duration
	Limit         ratelimit.Limit
	Failover      *failover.Config
	Hedge         *hedge.Config
	Picker        sturdy.Picker
}

// Config is what New builds a Chain from.
type Config struct {
	Tiers    []TierConfig
	Failover failover.Config  // the tiers' default failover
	Hedge    *hedge.Config    // the tiers' default hedging; nil: none
	Limiter  ratelimit.Config // the limiter's settings; Overrides gain the tiers' Limits
	// EndpointLimits are endpoints' own request limits, by name, applied
	// where an endpoint is picked (as its learned rate is).
	EndpointLimits map[string]ratelimit.Limit
	Throttle       *ratelimit.ThrottleConfig // adaptive throttling per tier; nil: none
	MaxWait        time.Duration

	// Peers are the endpoints' names, by tier: the endpoints of one tier
	// may share a server's limit that no QuotaKey names, and are learned
	// as one when their first refusals coincide (ratelimit's
	// Limiter.MayShare). Endpoints of different tiers never are.
	Peers [][]string
	// QuotaKeys are endpoints' quota keys, by name: endpoints with the
	// same key are paced as one (quota.go). Nil or "": each its own.
	QuotaKeys map[string]string

	// Hooks observe every attempt (telemetry's spans); nil means none.
	Hooks *attempt.Hooks
	// OnAttempt is the user's hook: every attempt once it has ended.
	OnAttempt func(sturdy.Attempt)
	// OnFallback is called when a call leaves tier from for tier to.
	OnFallback func(from, to int, reason sturdy.FallbackReason)
	// Names says how errors name the configuration's parts.
	Names Names
}

// Names are how configuration errors name what to fix, in the words of
// the API the user called: degrade's Config fields or an adapter's options.
type Names struct {
	Op       string                          // the error prefix: "degrade", "httpmw", "grpcmw"
	Tiers    string                          // where tiers are given, e.g. "Config.Tiers" or "WithTier"
	Tier     func(i int, tier string) string // a tier, e.g. `Tiers[1]` or `tier "fallback"`
	Failover string                          // e.g. "Config.Failover" or "WithFailover"
	Hedge    string
	Limiter  string
	Throttle string
	MaxWait  string
}

type tier struct {
	TierConfig
	index   int
	quality float64
	ready   func() bool
	retry   *policy.Retry
	hedge   *policy.Hedge // nil: the tier never hedges
	// throttle is the tier's adaptive throttle; nil: none.
	throttle *ratelimit.Throttle
	// local says the tier has no limit but its servers' cooldowns, kept
	// in coolUntil (Unix ns; 0: none) rather than the limiter: admission
	// is then one atomic load instead of a limiter's lookup and lock
	// (BenchmarkRoundTripSturdy in httpmw; see cooldown.go).
	local     bool
	coolUntil atomic.Int64
	// specs are the tier's attempt loops, by spec's flags: hedged or not,
	// and whether the loop waits for a server's Retry-After itself.
	specs  [4]attempt.Spec
	single attempt.Spec // one attempt: for requests that cannot be replayed
	served atomic.Uint64
	// learned is the context window the tier's servers named in a
	// too-large answer (WindowError); 0: none. See window.
	learned atomic.Int64
}

const (
	noHedge = 1 << iota // the call may not hedge (a stream)
	noWait              // a later tier can take the call at once
)

// spec returns the attempt loop for a call on t.
func (t *tier) spec(call *callFlags) *attempt.Spec {
	if call.once {
		return &t.single
	}
	return &t.specs[call.flags]
}

// callFlags selects a tier's attempt loop.
type callFlags struct {
	once  bool
	flags int
}

// Chain is a fallback chain of tiers, each with its policies. It is safe
// for concurrent use.
type Chain struct {
	tiers      []*tier
	limiter    *ratelimit.Limiter
	op         string // names the chain in errors: Names.Op
	maxWait    time.Duration
	onFallback func(from, to int, reason sturdy.FallbackReason)
	pacing     *pacing // the endpoints' learned rates; nil: learning is off
	listens    bool    // pacing learns from rate-limit headers (Listens)
	failed     atomic.Uint64
	fallbacks  atomic.Uint64
}

// DefaultTierName is the name of tier i when it has none.
func DefaultTierName(i int) string { return fmt.Sprintf("tier%d", i) }

// Validate returns every problem of cfg's tiers and policies at once,
// each naming its field; nil when New can build it. Pickers are not
// checked: adapters fill them.
func Validate(cfg *Config) []error {
	n := cfg.Names
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(n.Op+": "+format, args...))
	}
	if len(cfg.Tiers) == 0 {
		bad("no tiers; give at least the primary (%s)", n.Tiers)
	}
	if cfg.MaxWait < 0 {
		bad("%s is %v; it must not be negative", n.MaxWait, cfg.MaxWait)
	}
	if _, err := policy.NewRetry(policy.RetryConfig(cfg.Failover)); err != nil {
		bad("%s: %w", n.Failover, err)
	}
	if cfg.Hedge != nil {
		if _, err := policy.NewHedge(policy.HedgeConfig(*cfg.Hedge)); err != nil {
			bad("%s: %w", n.Hedge, err)
		}
	}
	if cfg.Throttle != nil {
		if _, err := ratelimit.NewThrottle(*cfg.Throttle); err != nil {
			bad("%s: %w", n.Throttle, err)
		}
	}
	lc := cfg.Limiter
	lc.Overrides = nil // the tiers' limits are checked below, by tier
	if _, err := ratelimit.New(lc); err != nil {
		bad("%s: %w", n.Limiter, err)
	}
	seen := map[string]bool{}
	for i, t := range cfg.Tiers {
		errs = append(errs, validateTier(n, i, &t, seen)...)
	}
	_, qerrs := quotaLimits(n.Op, cfg.EndpointLimits, quotaKeys(cfg.QuotaKeys))
	return append(errs, qerrs...)
}

// validateTier returns the problems of tier i; seen holds the names of the
// tiers before it.
func validateTier(n Names, i int, t *TierConfig, seen map[string]bool) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(n.Op+": "+format, args...))
	}
	name := t.Name
	if name == "" {
		name = DefaultTierName(i)
	}
	at := n.Tier(i, name)
	switch {
	case seen[name]:
		bad("%s: Name %q is used twice; tier names must be unique", at, name)
	case t.Quality < 0 || t.Quality > 1:
		bad("%s: Quality is %v; it must be in [0, 1]", at, t.Quality)
	case t.ContextWindow < 0:
		bad("%s: ContextWindow is %d; it must not be negative", at, t.ContextWindow)
	case t.Timeout < 0:
		bad("%s: Timeout is %v; it must not be negative", at, t.Timeout)
	}
	seen[name] = true
	if l := t.Limit; l.RequestsPerSecond < 0 || l.Burst < 0 || l.TokensPerMinute < 0 || l.TokenBurst < 0 {
		bad("%s: Limit has a negative field (%+v); rates and bursts must be zero (unlimited) or positive", at, l)
	}
	if t.Failover != nil {
		if _, err := policy.NewRetry(policy.RetryConfig(*t.Failover)); err != nil {
			bad("%s: Failover: %w", at, err)
		}
	}
	if t.Hedge != nil && t.Hedge.MaxHedges >= 0 {
		if _, err := policy.NewHedge(policy.HedgeConfig(*t.Hedge)); err != nil {
			bad("%s: Hedge: %w", at, err)
		}
	}
	return errs
}

// New builds a Chain from a configuration Validate accepted and whose
// tiers all have a Picker.
func New(cfg *Config) (*Chain, error) {
	if errs := Validate(cfg); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	lc := cfg.Limiter
	// Learning is per endpoint (pacing); the tiers' limiter applies what
	// was configured and the servers' cooldowns, and learns nothing.
	lc.Learn.Off = true
	lc.Overrides = make(map[string]ratelimit.Limit, len(cfg.Limiter.Overrides)+len(cfg.Tiers))
	for k, v := range cfg.Limiter.Overrides {
		lc.Overrides[k] = v
	}
	c := &Chain{op: cfg.Names.Op, maxWait: cfg.MaxWait, onFallback: cfg.OnFallback}
	hooks := WithOnAttempt(cfg.Hooks, cfg.OnAttempt)
	var err error
	keys := quotaKeys(cfg.QuotaKeys)
	limits, _ := quotaLimits(cfg.Names.Op, cfg.EndpointLimits, keys) // validated
	if c.pacing, err = newPacing(cfg.Limiter, limits, keys, cfg.Peers); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", cfg.Names.Op, cfg.Names.Limiter, err)
	}
	if c.pacing != nil {
		hooks = learningHooks(c.pacing, hooks)
		c.listens = !cfg.Limiter.Learn.Off
	}
	for i, tc := range cfg.Tiers {
		if tc.Name == "" {
			tc.Name = DefaultTierName(i)
		}
		if tc.Picker == nil {
			return nil, fmt.Errorf("%s: %s has no Picker; give it a balancer of its endpoints", cfg.Names.Op, cfg.Names.Tier(i, tc.Name))
		}
		lc.Overrides[tc.Name] = tc.Limit
		t := &tier{TierConfig: tc, index: i, quality: tc.Quality}
		t.local = tc.Limit == (ratelimit.Limit{}) && cfg.Limiter.Store == nil &&
			cfg.Limiter.LimitFunc == nil && cfg.Limiter.Default == (ratelimit.Limit{})
		if t.quality == 0 {
			t.quality = 1
		}
		if r, ok := tc.Picker.(interface{ Ready() bool }); ok {
			t.ready = r.Ready
		}
		fc := cfg.Failover
		if tc.Failover != nil {
			fc = *tc.Failover
		}
		t.retry, _ = policy.NewRetry(policy.RetryConfig(fc)) // validated
		if hc := cmpHedge(tc.Hedge, cfg.Hedge); hc != nil {
			t.hedge, _ = policy.NewHedge(policy.HedgeConfig(*hc))
		}
		if cfg.Throttle != nil {
			t.throttle, _ = ratelimit.NewThrottle(*cfg.Throttle)
		}
		pick := tc.Picker
		if c.pacing != nil {
			pick = &picker{next: tc.Picker, p: c.pacing, op: cfg.Names.Op}
		}
		for f := range t.specs {
			s := attempt.Spec{Picker: pick, Retry: t.retry, Hooks: hooks, Op: cfg.Names.Op, Tier: i, TierName: tc.Name}
			if t.hedge != nil && f&noHedge == 0 {
				s.Hedge = t.hedge
			}
			s.LaterTier = f&noWait != 0
			t.specs[f] = s
		}
		t.single = attempt.Spec{Picker: pick, Hooks: hooks, Op: cfg.Names.Op, Tier: i, TierName: tc.Name}
		c.tiers = append(c.tiers, t)
	}
	if c.limiter, err = ratelimit.New(lc); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", cfg.Names.Op, cfg.Names.Limiter, err)
	}
	return c, nil
}

// cmpHedge is the tier's hedging: its own config, else the chain's; a
// config with negative MaxHedges turns hedging off for the tier.
func cmpHedge(own, def *hedge.Config) *hedge.Config {
	h := def
	if own != nil {
		h = own
	}
	if h == nil || h.MaxHedges < 0 {
		return nil
	}
	return h
}

// WithOnAttempt returns hooks with on called at the End of every attempt
// (hooks itself when on is nil).
func WithOnAttempt(hooks *attempt.Hooks, on func(sturdy.Attempt)) *attempt.Hooks {
	if on == nil {
		return hooks
	}
	h := attempt.Hooks{}
	if hooks != nil {
		h = *hooks
	}
	end := h.End
	h.End = func(ctx context.Context, a attempt.Info, o sturdy.Outcome, won bool) {
		if end != nil {
			end(ctx, a, o, won)
		}
		on(attempt.Record(a, o))
	}
	return &h
}

// Len returns the number of tiers.
func (c *Chain) Len() int { return len(c.tiers) }

// Tier returns tier i's configuration, its Name defaulted.
func (c *Chain) Tier(i int) TierConfig { return c.tiers[i].TierConfig }

// TierPolicies returns tier i's failover policy and hedging policy (nil
// when the tier does not hedge), for telemetry.
func (c *Chain) TierPolicies(i int) (*policy.Retry, *policy.Hedge) {
	return c.tiers[i].retry, c.tiers[i].hedge
}

// Hedged reports whether tier i may hedge.
func (c *Chain) Hedged(i int) bool { return c.tiers[i].hedge != nil }

// Stats is the chain's accounting since New.
type Stats struct {
	Served          []uint64
	Shares          []float64
	Failed          uint64
	Fallbacks       uint64
	ExpectedQuality float64
	Failover        []failover.Stats
	Hedge           []hedge.Stats
}

// Stats returns the chain's accounting.
func (c *Chain) Stats() Stats {
	s := Stats{
		Served:    make([]uint64, len(c.tiers)),
		Shares:    make([]float64, len(c.tiers)),
		Failed:    c.failed.Load(),
		Fallbacks: c.fallbacks.Load(),
		Failover:  make([]failover.Stats, len(c.tiers)),
		Hedge:     make([]hedge.Stats, len(c.tiers)),
	}
	var total uint64
	for i, t := range c.tiers {
		s.Served[i] = t.served.Load()
		total += s.Served[i]
		s.Failover[i] = failover.Stats(t.retry.Stats())
		if t.hedge != nil {
			s.Hedge[i] = hedge.Stats(t.hedge.Stats())
		}
	}
	s.ExpectedQuality = 1
	if total > 0 {
		s.ExpectedQuality = 0
		for i, t := range c.tiers {
			s.Shares[i] = float64(s.Served[i]) / float64(total)
			s.ExpectedQuality += s.Shares[i] * t.quality
		}
	}
	return s
}
