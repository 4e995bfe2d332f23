// Package clock reads the time for the per-call path at half the cost of
// time.Now.
//
// time.Now reads two clocks, the wall clock and the monotonic one (48 ns
// against 27 on the machines sturdy is measured on, BenchmarkNow). Every
// time sturdy reads per call is for durations and deadlines, which Go
// computes from the monotonic reading alone, so Now reads only the
// monotonic clock and dates it from the wall clock read once, at start-up.
package clock

import "time"

// epoch anchors Now: its wall and monotonic readings, both.
var epoch = time.Now()

// Now returns the current time. Its monotonic reading is exact, as
// time.Now's; its wall clock reading is the wall clock at start-up plus
// the monotonic time since, which differs from time.Now's by however far
// the wall clock was stepped since (by hand or by a time daemon's step; a
// slew moves both). Use it for durations, deadlines and comparisons with
// other times that have a monotonic reading (time.Now's, a context's
// deadline), not to print the date.
//
// Inside a testing/synctest bubble, whose fake time has no monotonic
// reading, it is time.Now: the bubble's time.
func Now() time.Time {
	d := time.Since(epoch)
	if d < 0 {
		// Only a bubble's time, which starts in 2000 and has no
		// monotonic reading, comes before epoch: time.Since computed
		// it from the wall clocks.
		return time.Now()
	}
	return epoch.Add(d)
}
