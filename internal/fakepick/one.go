package fakepick

import (
	"context"

	"github.com/sturdyai/sturdy"
)

// One always picks its one endpoint, with a report that does nothing,
// and records nothing: the cheapest Picker, for benchmarks that measure
// the attempt loop or the chain around it.
type One struct{ EP sturdy.Endpoint }

func (p *One) Pick(context.Context, []string) (*sturdy.Endpoint, func(sturdy.Outcome), error) {
	return &p.EP, noReport, nil
}

func noReport(sturdy.Outcome) {}
