package health

// THIS FILE IS THE AGREED API SURFACE, written before the implementation so
// that the balancer can be built in parallel. The health implementer
// replaces it with real files (config.go, tracker.go, member.go, probe.go,
// availability.go, ...) keeping every exported name and signature below,
// and deletes this file.

import (
	"context"
	"time"

	"github.com/sturdyai/sturdy"
)

// State is an endpoint's health state.
type State uint8

const (
	Healthy   State = iota // taking traffic
	Ejected                // taking no traffic until its ejection ends
	Probation              // half-open: taking traffic; one failure re-ejects it
)

func (s State) String() string { return [...]string{"healthy", "ejected", "probation"}[s] }

// Config configures a Tracker. Every zero field means its documented default.
type Config struct {
	ConsecutiveFailures int           // 0: 5; negative: rule off
	FailureRate         float64       // 0: 0.5; negative: rule off
	MinCalls            int           // 0: 20
	Window              time.Duration // 0: 10s
	BaseEjection        time.Duration // 0: 30s; ejection n lasts n × BaseEjection
	MaxEjection         time.Duration // 0: 300s
	MaxEjectedShare     float64       // 0: 0.1; at least one member may always be ejected
	ProbationSuccesses  int           // 0: 1 success in probation makes it healthy
	OnStateChange       func(StateChange)
}

// StateChange is reported to Config.OnStateChange, never under a lock.
type StateChange struct {
	Endpoint string
	From, To State
	At       time.Time
	Reason   string // "consecutive_failures", "failure_rate", "auth", "probe", "expired", "success", ...
}

type Tracker struct{}

type Member struct{}

func New(cfg Config) (*Tracker, error)                                 { return &Tracker{}, nil }
func (t *Tracker) Add(name string) *Member                             { return &Member{} }
func (t *Tracker) Remove(name string)                                  {}
func (t *Tracker) Member(name string) *Member                          { return nil }
func (t *Tracker) Observe(name string, o sturdy.Outcome)               {}
func (t *Tracker) Allowed(name string) bool                            { return true }
func (t *Tracker) State(name string) State                             { return Healthy }
func (t *Tracker) Epoch() uint64                                       { return 0 }
func (t *Tracker) Availability(name string) (Availability, bool)       { return Availability{}, false }
func (m *Member) Name() string                                         { return "" }
func (m *Member) Observe(o sturdy.Outcome)                             {}
func (m *Member) Allowed() bool                                        { return true }
func (m *Member) State() State                                         { return Healthy }
func (m *Member) ProbeResult(err error)                                {}
func (m *Member) Availability() Availability                           { return Availability{} }
func (t *Tracker) RunProbes(ctx context.Context, p Prober, eps []sturdy.Endpoint, cfg ProbeConfig) error {
	return nil
}

type Prober interface {
	Probe(ctx context.Context, ep sturdy.Endpoint) error
}

type ProbeConfig struct {
	Interval time.Duration // 0: 10s
	Jitter   float64       // 0: 0.1 (±10% of Interval)
	Timeout  time.Duration // 0: 2s
}

type Availability struct {
	Uptime, Downtime time.Duration
	Failures         int
	MTBF, MTTR       time.Duration
	Availability     float64
}

func AtLeastK(k int, p []float64) float64 { return 0 }
