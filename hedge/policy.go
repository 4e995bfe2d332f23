package hedge

import (
	"time"

	"github.com/sturdyai/sturdy/internal/policy"
)

// Config configures a Policy. Every zero field means its documented
// default (delay = p95 of recent latencies, 1 hedge, budget 5%).
type Config struct {
	// Delay is a fixed hedge delay. Zero means adaptive: the Quantile of
	// recent successful attempt latencies.
	Delay time.Duration
	// Quantile is the adaptive delay's quantile, in (0, 1). Zero means 0.95.
	Quantile float64
	// MinSamples is how many latencies the adaptive delay needs before
	// the policy hedges at all. Zero means 20.
	MinSamples int
	// MinDelay floors the adaptive delay, so that a pool of very fast
	// answers is not hedged on noise. Zero means 1ms.
	MinDelay time.Duration
	// Window is how many recent latencies the adaptive delay follows (it
	// answers from the last Window to 2×Window). Zero means 1000.
	Window int
	// MaxHedges caps the hedges per call (attempts beyond the first).
	// Zero means 1. Negative is an error for New; as a tier's own Hedge
	// (degrade.Tier.Hedge) it turns hedging off for that tier.
	MaxHedges int
	// BudgetRatio is the share of calls that may be hedged. Zero means
	// 0.05; negative disables the budget.
	BudgetRatio float64
	// BudgetMinPerSecond is a floor of hedges per second that the budget
	// always allows, so that a quiet client can hedge at all. Zero means 1;
	// negative means none.
	BudgetMinPerSecond float64
	// BudgetWindow is the sliding window of the budget. Zero means 10s.
	BudgetWindow time.Duration
}

// Policy is a hedging policy for Do. It is safe for concurrent use; one
// Policy is meant to be shared by all calls to one pool, since its delay
// learns from them and its budget is spent by them. (The adapters and
// degrade build a policy per tier from a Config.)
type Policy struct {
	p *policy.Hedge
}

// New returns a Policy, or an error for a configuration that cannot work.
func New(cfg Config) (*Policy, error) {
	p, err := policy.NewHedge(policy.HedgeConfig(cfg))
	if err != nil {
		return nil, err
	}
	return &Policy{p: p}, nil
}

// Delay returns how long a call waits before hedging, and false while the
// adaptive delay has too few samples to hedge at all.
func (p *Policy) Delay() (time.Duration, bool) { return p.p.Delay() }

// MaxHedges caps the hedges per call.
func (p *Policy) MaxHedges() int { return p.p.MaxHedges() }

// Stats are the policy's counters since New, for metrics.
type Stats struct {
	Hedges         uint64        // hedges the budget allowed
	BudgetRefusals uint64        // hedges the budget refused
	Delay          time.Duration // the current delay; zero while warming up
}

// Stats returns the policy's counters.
func (p *Policy) Stats() Stats { return Stats(p.p.Stats()) }
