package sturdy

import (
	"strconv"
	"strings"
	"time"
)

// AttemptKind says why an attempt was started.
type AttemptKind uint8

const (
	// First is the call's first attempt.
	First AttemptKind = iota
	// Retry is an attempt started because an earlier one failed with a
	// class that says "retry elsewhere".
	Retry
	// Hedge is an attempt started because earlier ones were slow.
	Hedge
)

// String returns "first", "retry" or "hedge".
func (k AttemptKind) String() string {
	switch k {
	case First:
		return "first"
	case Retry:
		return "retry"
	case Hedge:
		return "hedge"
	}
	return "unknown"
}

// Attempt records one attempt of a call: where it went, what kind it was,
// how it ended and why. A failed call's *Error lists its attempts; the
// adapters' OnAttempt hook receives each one as it ends.
type Attempt struct {
	Endpoint   string        // Endpoint.Name
	Tier       string        // the name of the tier the attempt served; "" outside a chain of tiers
	N          int           // 1-based attempt number within the tier's attempt loop
	Kind       AttemptKind   // first, retry or hedge
	Class      Class         // how it ended
	Latency    time.Duration // from start to outcome
	RetryAfter time.Duration // the server's wait hint, if any
	Err        error         // the underlying error
}

// Error is the error sturdy returns when a call fails. It says what class
// of failure ended the call, on which endpoint, how long the server asked
// the caller to wait, and, for a call that tried several endpoints, every
// attempt and why it failed.
//
// errors.Is(err, ErrUnavailable) (or the sentinel of any other class)
// matches the class of the Error; errors.As(err, &e) with e *Error gives
// the details. Unwrap returns the error of the attempt that decided the
// outcome, so errors.Is(err, context.DeadlineExceeded) and the like work too.
//
// Messages carry endpoint names, classes and the attempts' errors, never
// request bodies or credentials.
type Error struct {
	Class      Class         // the class that ended the call
	Endpoint   string        // the endpoint of the deciding attempt, if any
	RetryAfter time.Duration // the longest wait hint any attempt carried
	Err        error         // the deciding attempt's error; may be nil
	Attempts   []Attempt     // every failed attempt, in start order; may be empty
	// Op names what failed (for example "failover", "ratelimit"); it
	// prefixes the message.
	Op string
}

// Error formats "sturdy: <op>: <class> on <endpoint>: <err>" followed by
// the attempts when there were more than one.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sturdy: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Class.String())
	if e.Endpoint != "" {
		b.WriteString(" on ")
		b.WriteString(e.Endpoint)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteString(")")
	}
	if len(e.Attempts) > 1 || (len(e.Attempts) == 1 && e.Attempts[0].Endpoint != e.Endpoint) {
		b.WriteString("; ")
		b.WriteString(strconv.Itoa(len(e.Attempts)))
		if len(e.Attempts) == 1 {
			b.WriteString(" attempt: ")
		} else {
			b.WriteString(" attempts: ")
		}
		for i, a := range e.Attempts {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(i + 1))
			b.WriteString(". ")
			b.WriteString(a.Endpoint)
			b.WriteString(" ")
			b.WriteString(a.Kind.String())
			b.WriteString(" ")
			b.WriteString(a.Class.String())
			if a.Err != nil {
				b.WriteString(" (")
				b.WriteString(a.Err.Error())
				b.WriteString(")")
			}
		}
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's class.
func (e *Error) Is(target error) bool {
	return target != nil && target == e.Class.Err()
}

// Unwrap returns the deciding attempt's error.
func (e *Error) Unwrap() error { return e.Err }
