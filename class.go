package sturdy

import (
	"context"
	"errors"
	"net"
)

// Class is what one attempt's outcome means to every policy: whether to
// retry elsewhere, whether it counts against the endpoint's health, and
// which sentinel error a caller matches it with. The constants' docs and
// the methods below are the contract (TestClassTable pins it).
type Class uint8

const (
	// Success is a 2xx/3xx response or gRPC OK.
	Success Class = iota
	// Unavailable is a 5xx, gRPC UNAVAILABLE, or a transport failure
	// (refused, reset, EOF before headers, TLS).
	Unavailable
	// Overloaded is 429, 529, a 503 with Retry-After, or gRPC
	// RESOURCE_EXHAUSTED: saturation, not sickness.
	Overloaded
	// Timeout is a per-attempt or time-to-first-byte deadline.
	Timeout
	// TooLarge is a request that exceeds the model's context window.
	TooLarge
	// Auth is 401/403 or gRPC UNAUTHENTICATED/PERMISSION_DENIED: the
	// endpoint's credential is bad.
	Auth
	// Fatal is any other client error; it is returned to the caller as is.
	Fatal
	// Canceled means the caller gave up (its context is done).
	Canceled

	numClasses = int(Canceled) + 1
)

var classNames = [numClasses]string{
	Success:     "success",
	Unavailable: "unavailable",
	Overloaded:  "overloaded",
	Timeout:     "timeout",
	TooLarge:    "too_large",
	Auth:        "auth",
	Fatal:       "fatal",
	Canceled:    "canceled",
}

// String returns the class's low-cardinality name, as used in span
// attributes and metric labels ("success", "unavailable", "too_large", ...).
func (c Class) String() string {
	if int(c) < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// RetryElsewhere reports whether another attempt on a different endpoint
// may succeed where this one did not.
func (c Class) RetryElsewhere() bool {
	switch c {
	case Unavailable, Overloaded, Timeout, Auth:
		return true
	}
	return false
}

// Failure reports whether the outcome counts against the endpoint's health.
// Overloaded does not (the endpoint is busy, not broken), nor do classes
// that describe the request rather than the endpoint.
func (c Class) Failure() bool {
	switch c {
	case Unavailable, Timeout, Auth:
		return true
	}
	return false
}

// Sentinel errors, one per failing class. An *Error matches the sentinel of
// its class with errors.Is.
var (
	ErrUnavailable = errors.New("sturdy: unavailable")
	ErrOverloaded  = errors.New("sturdy: overloaded")
	ErrTimeout     = errors.New("sturdy: timeout")
	ErrTooLarge    = errors.New("sturdy: request exceeds the context window")
	ErrAuth        = errors.New("sturdy: credential rejected")
	ErrFatal       = errors.New("sturdy: request failed")
	ErrCanceled    = errors.New("sturdy: canceled")
)

var classErrs = [numClasses]error{
	Unavailable: ErrUnavailable,
	Overloaded:  ErrOverloaded,
	Timeout:     ErrTimeout,
	TooLarge:    ErrTooLarge,
	Auth:        ErrAuth,
	Fatal:       ErrFatal,
	Canceled:    ErrCanceled,
}

// Err returns the sentinel error of the class, or nil for Success.
func (c Class) Err() error {
	if int(c) < numClasses {
		return classErrs[c]
	}
	return nil
}

// ClassOf classifies an error returned by a call that has no richer
// signal (no status code): nil is Success; an *Error (anywhere in the
// chain) gives its class; a sentinel gives its class; context.Canceled is
// Canceled; context.DeadlineExceeded and network timeouts are Timeout; any
// other error is Unavailable, the class for transport failures.
func ClassOf(err error) Class {
	if err == nil {
		return Success
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Class
	}
	for c := Unavailable; int(c) < numClasses; c++ {
		if errors.Is(err, classErrs[c]) {
			return c
		}
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return Timeout
	}
	return Unavailable
}

// OutcomeOf turns a call's error into an Outcome: nil is Success; a
// *Error in the chain gives its class and Retry-After; any other error is
// classified by ClassOf.
func OutcomeOf(err error) Outcome {
	if err == nil {
		return Outcome{}
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return Outcome{Class: e.Class, Err: err, RetryAfter: e.RetryAfter}
	}
	return Outcome{Class: ClassOf(err), Err: err}
}
