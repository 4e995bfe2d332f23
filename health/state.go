package health

import "time"

// State is a member's health state. The zero value is Healthy.
type State uint8

const (
	// Healthy members take traffic; their outcomes are judged by the
	// consecutive-failure and failure-rate rules.
	Healthy State = iota
	// Ejected members take no traffic until their ejection ends (or a
	// probe succeeds).
	Ejected
	// Probation is half-open, as in gobreaker: the member takes traffic
	// again, one failure re-ejects it, and Config.ProbationSuccesses
	// successes make it Healthy.
	Probation
)

// String returns "healthy", "ejected" or "probation".
func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Ejected:
		return "ejected"
	case Probation:
		return "probation"
	}
	return "unknown"
}

// allowed reports whether a member in state s takes traffic.
func (s State) allowed() bool { return s != Ejected }

// Reasons reported in StateChange.Reason.
const (
	ReasonConsecutiveFailures = "consecutive_failures" // Healthy → Ejected
	ReasonFailureRate         = "failure_rate"         // Healthy → Ejected
	ReasonAuth                = "auth"                 // Healthy/Probation → Ejected: the credential was rejected
	ReasonProbeFailure        = "probe_failure"        // Healthy/Probation → Ejected
	ReasonProbeSuccess        = "probe_success"        // Ejected → Probation, before the ejection time ended
	ReasonExpired             = "expired"              // Ejected → Probation: the ejection time ended
	ReasonSuccess             = "success"              // Probation → Healthy
	ReasonProbationFailure    = "probation_failure"    // Probation → Ejected
)

// StateChange is one transition of one member, reported to
// Config.OnStateChange, never under a lock.
type StateChange struct {
	Endpoint string // the member's name
	From, To State
	// At is when the change took effect. An ejection's expiry is noticed
	// lazily, but At is the moment the ejection ended, not the moment it
	// was noticed.
	At     time.Time
	Reason string // one of the Reason constants
}

// changes collects the (at most two) transitions of one locked operation
// so that they can be reported after unlocking, without allocating.
type changes struct {
	n   int
	buf [2]StateChange
}

func (c *changes) add(sc StateChange) {
	if c.n < len(c.buf) {
		c.buf[c.n] = sc
		c.n++
	}
}

// fire reports the collected changes. The caller must hold no lock.
func (c *changes) fire(hook func(StateChange)) {
	if hook == nil {
		return
	}
	for i := 0; i < c.n; i++ {
		hook(c.buf[i])
	}
}
