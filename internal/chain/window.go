package chain

import "errors"

// WindowError is the error of a too-large outcome (sturdy.TooLarge) whose
// answer named the model's context window: "This model's maximum context
// length is 4096 tokens". An adapter's classification wraps the attempt's
// error in it; the chain records the window for the tier (when the tier
// has a Model and no configured ContextWindow) and falls back to a tier
// whose window is larger or unknown.
type WindowError struct {
	Limit int   // the window named, in tokens; > 0
	Err   error // the attempt's error
}

func (e *WindowError) Error() string { return e.Err.Error() }
func (e *WindowError) Unwrap() error { return e.Err }

// namedWindow returns the window a too-large failure named, or 0.
func namedWindow(err error) int {
	if we, ok := errors.AsType[*WindowError](err); ok && we.Limit > 0 {
		return we.Limit
	}
	return 0
}

// window returns the tier's context window: configured, else learned from
// a too-large answer; 0 when unknown.
func (t *tier) window() int {
	if t.ContextWindow > 0 {
		return t.ContextWindow
	}
	return int(t.learned.Load())
}

// learn records the window a too-large answer of the tier named. A
// configured window takes precedence, and a tier without a Model serves
// whatever model the caller asked for, so neither learns.
func (t *tier) learn(limit int) {
	if limit > 0 && t.ContextWindow == 0 && t.Model != "" {
		t.learned.Store(int64(limit))
	}
}

// LearnedWindow returns the context window tier i learned from its
// servers' too-large answers, or 0.
func (c *Chain) LearnedWindow(i int) int { return int(c.tiers[i].learned.Load()) }
