package failover

import (
	"time"

	"github.com/sturdyai/sturdy"

	"github.com/sturdyai/sturdy/internal/policy"
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
// per-attempt timeout and a shared retry budget, for Do. It is safe for
// concurrent use; one Policy is meant to be shared by all calls to one
// pool, since they spend its budget. (The adapters and degrade build a
// policy per tier from a Config.)
type Policy struct {
	p *policy.Retry
}

// New returns a Policy, or an error for a configuration that cannot work.
func New(cfg Config) (*Policy, error) {
	p, err := policy.NewRetry(policy.RetryConfig(cfg))
	if err != nil {
		return nil, err
	}
	return &Policy{p: p}, nil
}

// MaxAttempts is the cap on attempts per call, the first included.
func (p *Policy) MaxAttempts() int { return p.p.MaxAttempts() }

// AttemptTimeout bounds one attempt; zero means none.
func (p *Policy) AttemptTimeout() time.Duration { return p.p.AttemptTimeout() }

// MaxRetryAfterWait caps the wait for a server's Retry-After.
func (p *Policy) MaxRetryAfterWait() time.Duration { return p.p.MaxRetryAfterWait() }

// Stats are the policy's counters since New, for metrics.
type Stats struct {
	Retries        uint64 // retries the budget allowed
	BudgetRefusals uint64 // retries the budget refused
}

// Stats returns the policy's counters.
func (p *Policy) Stats() Stats { return Stats(p.p.Stats()) }

// Retryable reports whether a failure of class c may be retried elsewhere.
func (p *Policy) Retryable(c sturdy.Class) bool { return p.p.Retryable(c) }
