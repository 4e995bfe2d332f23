package health

import "time"

// Availability summarises a member's state history from the moment it was
// added up to now, the current period included.
//
//   - Uptime is the time it was allowed (Healthy or Probation); Downtime
//     the time it was Ejected.
//   - Failures counts the transitions from an allowed state into Ejected,
//     which is also the number of ejections, completed or current.
//   - MTBF (mean time between failures) is Uptime / Failures, and MTTR
//     (mean time to repair) is Downtime / Failures: the mean time spent
//     ejected per ejection, the current one counted for the time it has
//     lasted so far.
//   - Availability is Uptime / (Uptime + Downtime), which equals
//     MTBF / (MTBF + MTTR) but is computed without their rounding.
//
// With no failures, MTBF is Uptime, MTTR is 0 and Availability is 1 (also
// for a member added this instant).
type Availability struct {
	Uptime, Downtime time.Duration
	Failures         int
	MTBF, MTTR       time.Duration
	Availability     float64
}

// Availability returns the member's availability figures up to now,
// noticing an ended ejection first.
func (m *Member) Availability() Availability {
	now := m.t.now()
	var ch changes
	m.mu.Lock()
	m.advance(now, &ch)
	up, down := m.up, m.down
	if d := now - m.since; d > 0 {
		if m.state.allowed() {
			up += d
		} else {
			down += d
		}
	}
	failures := m.failures
	m.mu.Unlock()
	ch.fire(m.t.cfg.OnStateChange)
	return newAvailability(time.Duration(up), time.Duration(down), failures)
}

func newAvailability(up, down time.Duration, failures int) Availability {
	a := Availability{Uptime: up, Downtime: down, Failures: failures, MTBF: up, Availability: 1}
	if failures > 0 {
		a.MTBF = up / time.Duration(failures)
		a.MTTR = down / time.Duration(failures)
	}
	if total := up + down; total > 0 {
		a.Availability = float64(up) / float64(total)
	}
	return a
}
