package hedge

import (
	"cmp"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy/internal/budget"
	"github.com/sturdyai/sturdy/internal/quantile"
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
	// Zero means 1.
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

// Policy is a hedging policy. It is safe for concurrent use; one Policy is
// meant to be shared by all calls to one pool, since its delay learns from
// them and its budget is spent by them.
type Policy struct {
	fixed      time.Duration
	q          float64
	minSamples int64
	minDelay   time.Duration
	maxHedges  int
	sketch     *quantile.Sketch // nil with a fixed delay
	budget     *budget.Budget   // nil: unlimited

	// The adaptive delay is computed once MinSamples observations are in,
	// then every refreshEvery observations; reading it is one atomic load.
	delay    atomic.Int64
	observed atomic.Int64
	hedges   atomic.Uint64
	refused  atomic.Uint64
}

const refreshEvery = 16

// New returns a Policy, or an error for a configuration that cannot work.
func New(cfg Config) (*Policy, error) {
	var errs []error
	if cfg.Delay < 0 {
		errs = append(errs, fmt.Errorf("hedge: Delay is %v; it must not be negative (0 means adaptive)", cfg.Delay))
	}
	if cfg.Quantile < 0 || cfg.Quantile >= 1 {
		errs = append(errs, fmt.Errorf("hedge: Quantile is %v; it must be in (0, 1), e.g. 0.95", cfg.Quantile))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MinSamples", int64(cfg.MinSamples)}, {"Window", int64(cfg.Window)}, {"MaxHedges", int64(cfg.MaxHedges)},
		{"MinDelay", int64(cfg.MinDelay)}, {"BudgetWindow", int64(cfg.BudgetWindow)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("hedge: %s is %d; it must not be negative", f.name, f.v))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := &Policy{
		fixed:      cfg.Delay,
		q:          cmp.Or(cfg.Quantile, 0.95),
		minSamples: int64(cmp.Or(cfg.MinSamples, 20)),
		minDelay:   cmp.Or(cfg.MinDelay, time.Millisecond),
		maxHedges:  cmp.Or(cfg.MaxHedges, 1),
	}
	if p.fixed == 0 {
		p.sketch = quantile.New(cfg.Window)
	}
	if cfg.BudgetRatio >= 0 {
		p.budget = budget.New(cmp.Or(cfg.BudgetRatio, 0.05), max(cmp.Or(cfg.BudgetMinPerSecond, 1), 0), cfg.BudgetWindow)
	}
	return p, nil
}

// Delay returns how long to wait before hedging a call, and false when the
// adaptive delay has too few samples yet.
func (p *Policy) Delay() (time.Duration, bool) {
	if p.fixed > 0 {
		return p.fixed, true
	}
	d := p.delay.Load()
	return time.Duration(d), d > 0
}

// MaxHedges caps the hedges per call.
func (p *Policy) MaxHedges() int { return p.maxHedges }

// Deposit records one call in the hedge budget.
func (p *Policy) Deposit(now time.Time) {
	if p.budget != nil {
		p.budget.Deposit(now)
	}
}

// AllowHedge withdraws one hedge from the budget, if it has one.
func (p *Policy) AllowHedge(now time.Time) bool {
	if p.budget == nil || p.budget.TryWithdraw(now) {
		p.hedges.Add(1)
		return true
	}
	p.refused.Add(1)
	return false
}

// Observe feeds a successful attempt's latency to the adaptive delay.
func (p *Policy) Observe(latency time.Duration) {
	if p.sketch == nil {
		return
	}
	p.sketch.Add(latency)
	if n := p.observed.Add(1); n%refreshEvery != 0 && n != p.minSamples {
		return // refreshed every refreshEvery samples, and as soon as there are enough
	}
	if p.sketch.Count() < p.minSamples {
		return
	}
	p.delay.Store(int64(max(p.sketch.Quantile(p.q), p.minDelay)))
}

// Stats are the policy's counters since New, for metrics.
type Stats struct {
	Hedges         uint64        // hedges the budget allowed
	BudgetRefusals uint64        // hedges the budget refused
	Delay          time.Duration // the current delay; zero while warming up
}

// Stats returns the policy's counters.
func (p *Policy) Stats() Stats {
	d, _ := p.Delay()
	return Stats{Hedges: p.hedges.Load(), BudgetRefusals: p.refused.Load(), Delay: d}
}
