package grpcmw

import "github.com/sturdyai/sturdy/health"

// TrackerOf returns c's health tracker, for tests that set or read an
// endpoint's health directly.
func TrackerOf(c *Client) *health.Tracker { return c.pl.Tracker }
