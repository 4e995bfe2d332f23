package balancer

import (
	"errors"
	"fmt"

	"github.com/sturdyai/sturdy"
)

// ErrNoEndpoint is wrapped by every error Pick returns when it has nothing
// to pick. The error itself is a *sturdy.Error of class Unavailable (so
// errors.Is(err, sturdy.ErrUnavailable) holds too, and failover treats it
// like any unavailable attempt) whose message says why: the pool is
// empty, every endpoint was already tried, or health allows none of the
// rest.
var ErrNoEndpoint = errors.New("balancer: no endpoint available")

var errEmpty = fmt.Errorf("%w: the pool is empty", ErrNoEndpoint)

// noEndpoint explains why nothing in s could be picked for a call that
// has tried exclude.
func (s *snapshot) noEndpoint(exclude []string) error {
	n := len(s.entries)
	why := errEmpty
	if n > 0 {
		untried := 0
		for i := range s.entries {
			if !excluded(exclude, s.entries[i].Name) {
				untried++
			}
		}
		if untried == 0 {
			why = fmt.Errorf("%w: all %d endpoints already tried", ErrNoEndpoint, n)
		} else {
			why = fmt.Errorf("%w: health allows none of the %d untried endpoints (of %d)", ErrNoEndpoint, untried, n)
		}
	}
	return &sturdy.Error{Op: "balancer", Class: sturdy.Unavailable, Err: why}
}
