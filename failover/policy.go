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
	// adaptive: AttemptTimeoutMultiplier × the AttemptTimeoutQuantile of
	// the latencies of the policy's recent successful attempts (the last
	// 1000 to 2000), never less than MinAttemptTimeout, once there are
	// AttemptTimeoutMinSamples of them (until then, none); it bounds only
	// attempts that another may follow, so a stuck endpoint costs a
	// failover, not the call, while the last attempt runs to the caller's
	// deadline. Positive fixes the timeout of every attempt. Negative
	// means none: only the caller's deadline applies. An attempt is cut
	// no sooner than its timeout and normally within a millisecond after
	// it (timeouts are swept, not timed one by one); an attempt whose
	// caller's deadline comes first is left to that deadline.
	AttemptTimeout time.Duration
	// AttemptTimeoutQuantile is the quantile of recent latencies the
	// adaptive timeout starts from. Zero means 0.99.
	AttemptTimeoutQuantile float64
	// AttemptTimeoutMultiplier is the margin the adaptive timeout puts on
	// that quantile. Zero means 3.
	AttemptTimeoutMultiplier float64
	// AttemptTimeoutMinSamples is how many successful attempts the
	// adaptive timeout waits for before it bounds anything. Zero means 100.
	AttemptTimeoutMinSamples int
	// MinAttemptTimeout is the adaptive timeout's floor, so that a pause
	// of the client's own (GC, a busy host's scheduler) on a very fast
	// endpoint does not look like a stuck server: the adaptive timeout
	// detects stuck endpoints, hedging cuts tails. Zero means 250ms.
	MinAttemptTimeout time.Duration
	// MaxRetryAfterWait caps how long a call waits for a server's
	// Retry-After once every endpoint has been tried. Zero means 1s;
	// negative means never wait. In a degrade chain a tier with a later
	// tier behind it falls back instead of waiting, and comes back to
	// wait only if no later tier serves the call.
	MaxRetryAfterWait time.Duration
	// BudgetRatio fixes the share of calls that may be retried, on top of
	// BudgetMinPerSecond: 0.1 is the SRE book's flat 10% budget (sturdy's
	// default before the learning budget). Zero means a learning budget:
	// up to BudgetMaxRatio retries per call, scaled by the success rate of
	// recent retries, and none beyond the floor while retries fail (an
	// outage) or while at least 1% of calls are answered Overloaded.
	// Negative disables the budget (every failure may be retried up to
	// MaxAttempts, which multiplies load during an outage).
	BudgetRatio float64
	// BudgetMaxRatio is the learning budget's ceiling in retries per call,
	// reached when every recent retry succeeded. Zero means 1.
	BudgetMaxRatio float64
	// BudgetMinPerSecond is the floor of retries per second that the
	// budget always allows, fixed or learning. Zero means 3; negative
	// means 0.
	BudgetMinPerSecond float64
	// BudgetWindow is the sliding window over which calls, retries and
	// their outcomes are counted. Zero means 10s.
	BudgetWindow time.Duration
	// Retryable decides which failure classes are retried. Nil means
	// sturdy.Class.RetryElsewhere (unavailable, overloaded, timeout, auth).
	Retryable func(sturdy.Class) bool
	// DisableSameEndpointRetry turns off retries on an endpoint the call
	// has already tried. By default, once a call has no untried endpoint
	// left (a tier with one endpoint, or every other one ejected or
	// tried), a retry may go back to one it tried whose failure may pass
	// (unavailable, a timeout, overloaded without a Retry-After), after
	// the usual backoff and within MaxAttempts and the retry budget; a
	// request whose body cannot be replayed is never retried at all.
	DisableSameEndpointRetry bool
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

// AttemptTimeout is the current bound on a first attempt that another may
// follow: the fixed AttemptTimeout, or the adaptive one as learned so far;
// zero means none.
func (p *Policy) AttemptTimeout() time.Duration { return p.p.AttemptTimeout(1, false) }

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
