package grpcmw

import "github.com/sturdyai/sturdy/health"

// TrackerOf returns c's health tracker, for tests that set or read an
// endpoint's health directly.
func TrackerOf(c *Client) *health.Tracker { return c.pl.Tracker }

// LearnedRate returns the rate c paces the endpoint named name at (zero:
// not paced).
func LearnedRate(c *Client, name string) float64 { return c.chain.LearnedRate(name) }
