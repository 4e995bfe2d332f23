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
	"github.com/sturdyai/sturdy/internal/quantile"
)

// ErrAttemptTimeout is the cause of an attempt's context when the attempt
// ran past its timeout (the attempt loop's ErrAttemptTimeout).
var ErrAttemptTimeout = errors.New("attempt timed out")

// RetryConfig is failover.Config, field for field (failover converts
// one to the other; the field docs are there).
type RetryConfig struct {
	MaxAttempts              int
	BaseBackoff              time.Duration
	MaxBackoff               time.Duration
	AttemptTimeout           time.Duration
	AttemptTimeoutQuantile   float64
	AttemptTimeoutMultiplier float64
	AttemptTimeoutMinSamples int
	MinAttemptTimeout        time.Duration
	MaxRetryAfterWait        time.Duration
	BudgetRatio              float64
	BudgetMaxRatio           float64
	BudgetMinPerSecond       float64
	BudgetWindow             time.Duration
	Retryable                func(sturdy.Class) bool
	DisableSameEndpointRetry bool
}

// Defaults of the adaptive attempt timeout and the learning budget
// (failover.Config documents them and README.md gives their sources).
const (
	defaultTimeoutQuantile   = 0.99
	defaultTimeoutMultiplier = 3
	defaultTimeoutMinSamples = 100
	defaultMinAttemptTimeout = 250 * time.Millisecond
	defaultBudgetMaxRatio    = 1.0
	timeoutWindow            = 1000 // observations per sketch window
)

// Retry is failover.Policy's implementation, with the methods only the
// attempt loop may call (Deposit, AllowRetry, Backoff). It is safe for
// concurrent use.
type Retry struct {
	maxAttempts    int
	base, maxB     time.Duration
	attemptTimeout time.Duration
	raWait         time.Duration
	retryable      func(sturdy.Class) bool
	noSame         bool             // DisableSameEndpointRetry
	budget         *budget.Budget   // fixed budget; nil: none or learning
	learning       *budget.Learning // learning budget; nil: none or fixed

	// The adaptive attempt timeout (sketch nil when AttemptTimeout is
	// set): recomputed once minSamples successes are in, then every
	// refreshEvery successes; reading it is one atomic load.
	sketch     *quantile.Sketch
	q, mult    float64
	minSamples int64
	minTimeout time.Duration
	timeout    atomic.Int64
	observed   atomic.Int64

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
	if cfg.AttemptTimeoutQuantile < 0 || cfg.AttemptTimeoutQuantile >= 1 {
		errs = append(errs, fmt.Errorf("failover: AttemptTimeoutQuantile is %v; it must be in (0, 1), e.g. 0.99 (0 means 0.99)", cfg.AttemptTimeoutQuantile))
	}
	if cfg.AttemptTimeoutMultiplier != 0 && cfg.AttemptTimeoutMultiplier < 1 {
		errs = append(errs, fmt.Errorf("failover: AttemptTimeoutMultiplier is %v; it must be at least 1 (0 means 3)", cfg.AttemptTimeoutMultiplier))
	}
	if cfg.AttemptTimeoutMinSamples < 0 {
		errs = append(errs, fmt.Errorf("failover: AttemptTimeoutMinSamples is %d; it must not be negative (0 means 100)", cfg.AttemptTimeoutMinSamples))
	}
	if cfg.MinAttemptTimeout < 0 {
		errs = append(errs, fmt.Errorf("failover: MinAttemptTimeout is %v; it must not be negative (0 means 250ms)", cfg.MinAttemptTimeout))
	}
	if cfg.BudgetMaxRatio < 0 || cfg.BudgetMaxRatio > 1000 {
		errs = append(errs, fmt.Errorf("failover: BudgetMaxRatio is %v; use retries per call such as 1 (0 means 1)", cfg.BudgetMaxRatio))
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
		attemptTimeout: max(cfg.AttemptTimeout, 0),
		raWait:         cmp.Or(cfg.MaxRetryAfterWait, time.Second),
		retryable:      cfg.Retryable,
		noSame:         cfg.DisableSameEndpointRetry,
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
	floor := max(cmp.Or(cfg.BudgetMinPerSecond, 3), 0)
	switch {
	case cfg.BudgetRatio > 0:
		p.budget = budget.New(cfg.BudgetRatio, floor, cfg.BudgetWindow)
	case cfg.BudgetRatio == 0:
		p.learning = budget.NewLearning(cmp.Or(cfg.BudgetMaxRatio, defaultBudgetMaxRatio), floor, cfg.BudgetWindow)
	}
	if cfg.AttemptTimeout == 0 {
		p.sketch = quantile.New(timeoutWindow)
		p.q = cmp.Or(cfg.AttemptTimeoutQuantile, defaultTimeoutQuantile)
		p.mult = cmp.Or(cfg.AttemptTimeoutMultiplier, defaultTimeoutMultiplier)
		p.minSamples = int64(cmp.Or(cfg.AttemptTimeoutMinSamples, defaultTimeoutMinSamples))
		p.minTimeout = cmp.Or(cfg.MinAttemptTimeout, defaultMinAttemptTimeout)
	}
	return p, nil
}

// MaxAttempts is the cap on attempts per call, the first included.
func (p *Retry) MaxAttempts() int { return p.maxAttempts }

// AttemptTimeout bounds attempt n (1-based); zero means none. A fixed
// AttemptTimeout bounds every attempt. The adaptive one bounds only an
// attempt that another may follow (not last: the loop knows the call's
// cap, hedges included, and the pool's size), and only once it has
// enough samples: the last attempt runs to the caller's deadline, so that
// a call that is slow everywhere (or a tier whose latencies just rose)
// still completes, and its success teaches the timeout the new latencies.
func (p *Retry) AttemptTimeout(n int, last bool) time.Duration {
	if p.sketch == nil {
		return p.attemptTimeout
	}
	if last || n >= p.maxAttempts {
		return 0
	}
	return time.Duration(p.timeout.Load())
}

// Observe learns from an attempt that ended with o (not one that lost to
// another or that the caller cancelled): a success's latency feeds the
// adaptive timeout; a retry's outcome and any Overloaded answer feed the
// learning budget.
func (p *Retry) Observe(kind sturdy.AttemptKind, o sturdy.Outcome) {
	if o.End.IsZero() {
		o.End = time.Now() // the loop sets End; a caller that measured nothing did not
	}
	switch {
	case o.Class == sturdy.Success:
		if p.sketch != nil {
			p.sketch.Add(o.Latency)
			if n := p.observed.Add(1); n >= p.minSamples && (n == p.minSamples || n%refreshEvery == 0) {
				d := time.Duration(float64(p.sketch.Quantile(p.q)) * p.mult)
				p.timeout.Store(int64(max(d, p.minTimeout)))
			}
		}
	case p.learning != nil && o.Class == sturdy.Overloaded:
		// The servers say overloaded, whether or not Retryable retries it.
		p.learning.Overloaded(o.End)
	}
	if p.learning == nil || o.Class == sturdy.Canceled || !p.Retryable(o.Class) && o.Class != sturdy.Success {
		return // says nothing about whether retries help
	}
	if errors.Is(o.Err, ErrAttemptTimeout) {
		// Cut by the adaptive timeout: the server was slower than the
		// tier's recent p99, not failing. Counting it as a failed retry
		// would close the budget whenever a tier's latencies rise, and
		// then the unbounded last attempt, which would have served, never
		// comes.
		return
	}
	if kind == sturdy.Retry {
		p.learning.Retried(o.End, o.Class == sturdy.Success)
	}
}

// Retryable reports whether a failure of class c may be retried elsewhere.
func (p *Retry) Retryable(c sturdy.Class) bool { return c != sturdy.Success && p.retryable(c) }

// RetrySame reports whether a retry may go back to the endpoint of a
// (retryable) failed attempt a, once the call has no untried endpoint
// left: for a failure that may pass (unavailable, a timeout, overloaded
// without a Retry-After), not for one that a retry elsewhere could cure
// but this endpoint will repeat (a refused credential), nor for an
// endpoint that asked to be left alone for a while (its Retry-After is
// the loop's to honour).
func (p *Retry) RetrySame(a sturdy.Attempt) bool {
	if p.noSame || !p.Retryable(a.Class) {
		return false
	}
	switch a.Class {
	case sturdy.Unavailable, sturdy.Timeout:
		return true
	case sturdy.Overloaded:
		return a.RetryAfter <= 0
	}
	return false
}

// SameEndpoint reports whether retries may go back to endpoints already
// tried.
func (p *Retry) SameEndpoint() bool { return !p.noSame }

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
	switch {
	case p.learning != nil:
		p.learning.Deposit(now)
	case p.budget != nil:
		p.budget.Deposit(now)
	}
}

// AllowRetry withdraws one retry from the budget, if it has one.
func (p *Retry) AllowRetry(now time.Time) bool {
	var ok bool
	switch {
	case p.learning != nil:
		ok = p.learning.TryWithdraw(now)
	case p.budget != nil:
		ok = p.budget.TryWithdraw(now)
	default:
		ok = true
	}
	if ok {
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
