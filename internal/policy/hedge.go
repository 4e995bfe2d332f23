package policy

import (
	"cmp"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy/internal/budget"
	"github.com/sturdyai/sturdy/internal/quantile"
)

// HedgeConfig is hedge.Config, field for field (hedge converts one to
// the other; the field docs are there).
type HedgeConfig struct {
	Delay              time.Duration
	Quantile           float64
	MinSamples         int
	MinDelay           time.Duration
	Window             int
	MaxHedges          int
	BudgetRatio        float64
	BudgetMinPerSecond float64
	BudgetWindow       time.Duration
}

// Hedge is hedge.Policy's implementation, with the methods only the
// attempt loop may call (Deposit, AllowHedge, Observe). It is safe for
// concurrent use.
type Hedge struct {
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

// NewHedge returns a Hedge, or an error for a configuration that cannot work.
func NewHedge(cfg HedgeConfig) (*Hedge, error) {
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
	p := &Hedge{
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
func (p *Hedge) Delay() (time.Duration, bool) {
	if p.fixed > 0 {
		return p.fixed, true
	}
	d := p.delay.Load()
	return time.Duration(d), d > 0
}

// MaxHedges caps the hedges per call.
func (p *Hedge) MaxHedges() int { return p.maxHedges }

// Deposit records one call in the hedge budget.
func (p *Hedge) Deposit(now time.Time) {
	if p.budget != nil {
		p.budget.Deposit(now)
	}
}

// AllowHedge withdraws one hedge from the budget, if it has one.
func (p *Hedge) AllowHedge(now time.Time) bool {
	if p.budget == nil || p.budget.TryWithdraw(now) {
		p.hedges.Add(1)
		return true
	}
	p.refused.Add(1)
	return false
}

// Observe feeds a successful attempt's latency to the adaptive delay.
func (p *Hedge) Observe(latency time.Duration) {
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

// HedgeStats are hedge.Stats.
type HedgeStats struct {
	Hedges         uint64        // hedges the budget allowed
	BudgetRefusals uint64        // hedges the budget refused
	Delay          time.Duration // the current delay; zero while warming up
}

// Stats returns the policy's counters.
func (p *Hedge) Stats() HedgeStats {
	d, _ := p.Delay()
	return HedgeStats{Hedges: p.hedges.Load(), BudgetRefusals: p.refused.Load(), Delay: d}
}
