package health

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults, after Envoy outlier detection and gRFC A50.
const (
	DefaultConsecutiveFailures = 5
	DefaultFailureRate         = 0.5
	DefaultMinCalls            = 20
	DefaultWindow              = 10 * time.Second
	DefaultBaseEjection        = 30 * time.Second
	DefaultMaxEjection         = 300 * time.Second
	DefaultMaxEjectedShare     = 0.1
	DefaultProbationSuccesses  = 1
)

// Config configures a Tracker. Every zero field means its documented
// default; New rejects only values that cannot work.
type Config struct {
	// ConsecutiveFailures ejects a member after this many failure-class
	// outcomes in a row (sturdy.Class.Failure). Attempts cut by the
	// failover policy's attempt timeout count for neither rule: slow is
	// the balancer's to weigh, and a replica that recovers gets its share
	// back at once instead of after an ejection. Zero means 5; a negative
	// value turns the rule off.
	ConsecutiveFailures int

	// FailureRate ejects a member when the share of failures among the
	// calls of the last Window is at least this, given at least MinCalls
	// calls in the window. Zero means 0.5; a negative value turns the
	// rule off; above 1 is an error (the rule could never fire).
	FailureRate float64

	// MinCalls is how many calls the window must hold before FailureRate
	// is judged. Zero means 20; negative is an error.
	MinCalls int

	// Window is the sliding window of the FailureRate rule, kept as ten
	// buckets of Window/10 each. Zero means 10s; negative is an error.
	Window time.Duration

	// BaseEjection is the unit of ejection time: the n-th ejection lasts
	// min(n × BaseEjection, MaxEjection), and n decays by one for each
	// BaseEjection the member spends healthy. Zero means 30s; negative is
	// an error.
	BaseEjection time.Duration

	// MaxEjection caps one ejection. Zero means 300s; negative, or less
	// than BaseEjection once defaults are applied, is an error.
	MaxEjection time.Duration

	// MaxEjectedShare caps passive (outcome-driven) ejections: one that
	// would take the number of ejected members above
	// max(1, floor(MaxEjectedShare × members)) does not happen, so at
	// least one member may always be ejected (Envoy's
	// max_ejection_percent). Probe failures are not capped. Zero means
	// 0.1; negative or above 1 is an error.
	MaxEjectedShare float64

	// ProbationSuccesses is how many successes a member in probation
	// needs to become healthy again. Zero means 1; negative is an error.
	ProbationSuccesses int

	// OnStateChange, if not nil, is called for every state transition of
	// every member. It is never called while the Tracker or a Member holds
	// a lock, so it may call back into the Tracker; it is called
	// synchronously from whichever goroutine noticed the change (often a
	// request's), so it should be quick.
	OnStateChange func(StateChange)
}

// withDefaults returns cfg with zero fields replaced by their defaults,
// or an error naming the first field that cannot work.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.ConsecutiveFailures == 0 {
		cfg.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	switch {
	case math.IsNaN(cfg.FailureRate):
		return cfg, errors.New("health: Config.FailureRate is NaN")
	case cfg.FailureRate > 1:
		return cfg, fmt.Errorf("health: Config.FailureRate %v is above 1; use a negative value to turn the rule off", cfg.FailureRate)
	case cfg.FailureRate == 0:
		cfg.FailureRate = DefaultFailureRate
	}
	if err := cmp.Or(
		positiveOr(&cfg.MinCalls, DefaultMinCalls, "Config.MinCalls"),
		positiveOr(&cfg.Window, DefaultWindow, "Config.Window"),
		positiveOr(&cfg.BaseEjection, DefaultBaseEjection, "Config.BaseEjection"),
		positiveOr(&cfg.MaxEjection, DefaultMaxEjection, "Config.MaxEjection"),
	); err != nil {
		return cfg, err
	}
	if cfg.MaxEjection < cfg.BaseEjection {
		return cfg, fmt.Errorf("health: Config.MaxEjection %v is less than Config.BaseEjection %v; raise MaxEjection", cfg.MaxEjection, cfg.BaseEjection)
	}
	switch {
	case math.IsNaN(cfg.MaxEjectedShare), cfg.MaxEjectedShare < 0, cfg.MaxEjectedShare > 1:
		return cfg, fmt.Errorf("health: Config.MaxEjectedShare %v is outside [0, 1]", cfg.MaxEjectedShare)
	case cfg.MaxEjectedShare == 0:
		cfg.MaxEjectedShare = DefaultMaxEjectedShare
	}
	if err := positiveOr(&cfg.ProbationSuccesses, DefaultProbationSuccesses, "Config.ProbationSuccesses"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// positiveOr applies a field's default when it is zero and refuses a
// negative value, naming the field (as "Config.Window") in the error.
func positiveOr[T int | time.Duration](v *T, def T, field string) error {
	switch {
	case *v < 0:
		return fmt.Errorf("health: %s %v is negative", field, *v)
	case *v == 0:
		*v = def
	}
	return nil
}
