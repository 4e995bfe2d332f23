// Package window counts events over a sliding window of time, as a ring
// of buckets that each cover an equal slice of it: a count is forgotten
// between (n−1)/n and 1 window after it was made. Health's failure-rate
// rule and ratelimit's adaptive throttle both count this way.
//
// A Ring is not safe for concurrent use: its owner's lock guards it.
// (internal/budget keeps a lock-free ring of its own, for the per-call
// deposits of retry and hedge budgets.)
package window
