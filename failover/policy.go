package failover

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

// Config configures a Policy. Every zero field means its documented
// default; README.md's configuration table gives each one's source.
type Config struct {
	// MaxAttempts caps attempts per call, the first included. Zero means
	// 3; 1 disables retries.
	MaxAttempts int
	// BaseBackoff is the ceiling of the first retry's random wait; the
	// ceiling doubles with each retry. Zero means 25ms; negative means no
	// backoff at all.
	BaseBackoff time.Duration
	// MaxBackoff caps the backoff ceiling. Zero means 1s.
	MaxBackoff time.Duration
	// AttemptTimeout bounds each attempt until it returns (for HTTP, until
	// the response headers and, for streams, the first byte). Zero means
	// no per-attempt timeout: only the caller's deadline applies.
	AttemptTimeout time.Duration
	// MaxRetryAfterWait caps how long a call waits for a server's
	// Retry-After once every endpoint has been tried. Zero means 1s;
	// negative means never wait. In a degrade chain a tier with a later
	// tier behind it falls back instead of waiting, and comes back to
	// wait only if no later tier serves the call.
	MaxRetryAfterWait time.Duration
	// BudgetRatio is the share of calls that may be retried. Zero means
	// 0.1; negative disables the budget (every failure may be retried up
	// to MaxAttempts, which multiplies load during an outage).
	BudgetRatio float64
	// BudgetMinPerSecond is the floor of retries per second that the
	// budget always allows. Zero means 3; negative means 0.
	BudgetMinPerSecond float64
	// BudgetWindow is the sliding window over which calls and retries are
	// counted. Zero means 10s.
	BudgetWindow time.Duration
	// Retryable decides which failure classes are retried. Nil means
	// sturdy.Class.RetryElsewhere (unavailable, overloaded, timeout, auth).
	Retryable func(sturdy.Class) bool
}

// Policy is a failover policy: attempt cap, backoff, Retry-After handling,
// per-attempt timeout and a shared retry budget. It is safe for concurrent
// use; one Policy is meant to be shared by all calls to one pool.
type Policy struct {
	maxAttempts    int
	base, maxB     time.Duration
	attemptTimeout time.Duration
	raWait         time.Duration
	retryable      func(sturdy.Class) bool
	budget         *budget.Budget // nil: unlimited

	refused atomic.Uint64
	retries atomic.Uint64
}

// New returns a Policy, or an error for a configuration that cannot work.
func New(cfg Config) (*Policy, error) {
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
	p := &Policy{
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
func (p *Policy) MaxAttempts() int { return p.maxAttempts }

// AttemptTimeout bounds one attempt; zero means none.
func (p *Policy) AttemptTimeout() time.Duration { return p.attemptTimeout }

// Retryable reports whether a failure of class c may be retried elsewhere.
func (p *Policy) Retryable(c sturdy.Class) bool { return c != sturdy.Success && p.retryable(c) }

// MaxRetryAfterWait caps the wait for a server's Retry-After.
func (p *Policy) MaxRetryAfterWait() time.Duration { return p.raWait }

// Backoff returns the random wait before retry n (1-based): uniform in
// [0, min(MaxBackoff, BaseBackoff × 2^(n−1))), "full jitter".
func (p *Policy) Backoff(n int) time.Duration {
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
func (p *Policy) Deposit(now time.Time) {
	if p.budget != nil {
		p.budget.Deposit(now)
	}
}

// AllowRetry withdraws one retry from the budget, if it has one.
func (p *Policy) AllowRetry(now time.Time) bool {
	if p.budget == nil || p.budget.TryWithdraw(now) {
		p.retries.Add(1)
		return true
	}
	p.refused.Add(1)
	return false
}

// Stats are the policy's counters since New, for metrics.
type Stats struct {
	Retries        uint64 // retries the budget allowed
	BudgetRefusals uint64 // retries the budget refused
}

// Stats returns the policy's counters.
func (p *Policy) Stats() Stats {
	return Stats{Retries: p.retries.Load(), BudgetRefusals: p.refused.Load()}
}
