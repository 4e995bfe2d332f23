package policy

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/budget"
)

// RetryConfig is failover.Config, field for field (failover converts
// one to the other; the field docs are there).
type RetryConfig struct {
	MaxAttempts        int
	BaseBackoff        time.Duration
	MaxBackoff         time.Duration
	AttemptTimeout     time.Duration
	MaxRetryAfterWait  time.Duration
	BudgetRatio        float64
	BudgetMinPerSecond float64
	BudgetWindow       time.Duration
	Retryable          func(sturdy.Class) bool
}

// Retry is failover.Policy's implementation, with the methods only the
// attempt loop may call (Deposit, AllowRetry, Backoff). It is safe for
// concurrent use.
type Retry struct {
	maxAttempts    int
	base, maxB     time.Duration
	attemptTimeout time.Duration
	raWait         time.Duration
	retryable      func(sturdy.Class) bool
	budget         *budget.Budget // nil: unlimited

	refused atomic.Uint64
	retries atomic.Uint64
}

// NewRetry returns a Retry, or an error for a configuration that cannot work.
func NewRetry(cfg RetryConfig) (*Retry, error) {
	var errs []error
	if cfg.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("failover: MaxAttempts is %d; it must be at least 1 (0 means 3)", cfg.MaxAttempts))
	}
	if cfg.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("failover: MaxBackoff is %v; it must not be negative", cfg.MaxBackoff))
	}
	if cfg.AttemptTimeout < 0 {
		errs = append(errs, fmt.Errorf("failover: AttemptTimeout is %v; it must not be negative (0 means none)", cfg.AttemptTimeout))
	}
	if cfg.BudgetWindow < 0 {
		errs = append(errs, fmt.Errorf("failover: BudgetWindow is %v; it must not be negative", cfg.BudgetWindow))
	}
	if cfg.BudgetRatio > 1000 {
		errs = append(errs, fmt.Errorf("failover: BudgetRatio is %v; use a share of calls such as 0.1", cfg.BudgetRatio))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := &Retry{
		maxAttempts:    cmp.Or(cfg.MaxAttempts, 3),
		base:           cmp.Or(cfg.BaseBackoff, 25*time.Millisecond),
		maxB:           cmp.Or(cfg.MaxBackoff, time.Second),
		attemptTimeout: cfg.AttemptTimeout,
		raWait:         cmp.Or(cfg.MaxRetryAfterWait, time.Second),
		retryable:      cfg.Retryable,
	}
	if p.base < 0 {
		p.base = 0
	}
	if p.raWait < 0 {
		p.raWait = 0
	}
	if p.retryable == nil {
		p.retryable = sturdy.Class.RetryElsewhere
	}
	if cfg.BudgetRatio >= 0 {
		floor := cmp.Or(cfg.BudgetMinPerSecond, 3)
		p.budget = budget.New(cmp.Or(cfg.BudgetRatio, 0.1), max(floor, 0), cfg.BudgetWindow)
	}
	return p, nil
}

// MaxAttempts is the cap on attempts per call, the first included.
func (p *Retry) MaxAttempts() int { return p.maxAttempts }

// AttemptTimeout bounds one attempt; zero means none.
func (p *Retry) AttemptTimeout() time.Duration { return p.attemptTimeout }

// Retryable reports whether a failure of class c may be retried elsewhere.
func (p *Retry) Retryable(c sturdy.Class) bool { return c != sturdy.Success && p.retryable(c) }

// MaxRetryAfterWait caps the wait for a server's Retry-After.
func (p *Retry) MaxRetryAfterWait() time.Duration { return p.raWait }

// Backoff returns the random wait before retry n (1-based): uniform in
// [0, min(MaxBackoff, BaseBackoff × 2^(n−1))), "full jitter".
func (p *Retry) Backoff(n int) time.Duration {
	if p.base <= 0 || n < 1 {
		return 0
	}
	ceil := p.maxB
	if n-1 < 32 {
		if c := p.base << uint(n-1); c > 0 && c < ceil {
			ceil = c
		}
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// Deposit records one call in the retry budget.
func (p *Retry) Deposit(now time.Time) {
	if p.budget != nil {
		p.budget.Deposit(now)
	}
}

// AllowRetry withdraws one retry from the budget, if it has one.
func (p *Retry) AllowRetry(now time.Time) bool {
	if p.budget == nil || p.budget.TryWithdraw(now) {
		p.retries.Add(1)
		return true
	}
	p.refused.Add(1)
	return false
}

// RetryStats are failover.Stats.
type RetryStats struct {
	Retries        uint64 // retries the budget allowed
	BudgetRefusals uint64 // retries the budget refused
}

// Stats returns the policy's counters.
func (p *Retry) Stats() RetryStats {
	return RetryStats{Retries: p.retries.Load(), BudgetRefusals: p.refused.Load()}
}
