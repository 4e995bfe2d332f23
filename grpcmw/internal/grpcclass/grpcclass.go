package grpcclass

import (
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/toolarge"
)

// numCodes is one past the last gRPC code (Unauthenticated = 16).
const numCodes = int(codes.Unauthenticated) + 1

// ErrBadPushback marks an attempt whose RESOURCE_EXHAUSTED carried a
// negative or malformed grpc-retry-pushback-ms: per gRFC A6 the server
// asks the client not to retry, so the attempt is classed Fatal.
var ErrBadPushback = errors.New("server pushback says do not retry")

// Classifier maps gRPC codes to classes. The zero value is not usable;
// start from Default. It is read-only once in use.
type Classifier struct {
	classes [numCodes]sturdy.Class
	// TooLarge, if set, reports whether an INVALID_ARGUMENT status says
	// the request exceeds the model's context window.
	TooLarge func(*status.Status) bool
}

// Default returns the default classification, as grpcmw's package doc
// lists it.
func Default() Classifier {
	var c Classifier
	for i := range c.classes {
		c.classes[i] = sturdy.Fatal
	}
	c.classes[codes.OK] = sturdy.Success
	c.classes[codes.Unavailable] = sturdy.Unavailable
	c.classes[codes.Internal] = sturdy.Unavailable
	c.classes[codes.Unknown] = sturdy.Unavailable
	c.classes[codes.ResourceExhausted] = sturdy.Overloaded
	c.classes[codes.DeadlineExceeded] = sturdy.Timeout
	c.classes[codes.Unauthenticated] = sturdy.Auth
	c.classes[codes.PermissionDenied] = sturdy.Auth
	c.classes[codes.Canceled] = sturdy.Canceled
	return c
}

// Set makes code classify as class. Codes outside the known range are
// ignored (they classify as Fatal).
func (c *Classifier) Set(code codes.Code, class sturdy.Class) {
	if int(code) < numCodes {
		c.classes[code] = class
	}
}

// Class returns the class of code, before hooks and pushback.
func (c *Classifier) Class(code codes.Code) sturdy.Class {
	if int(code) < numCodes {
		return c.classes[code]
	}
	return sturdy.Fatal
}

// Outcome classifies the error a call (or one attempt) ended with, given
// its trailer metadata (may be nil). Latency is left to the caller.
//
// A RESOURCE_EXHAUSTED answer reads its wait from grpc-retry-pushback-ms
// (in the trailer; in the header, when given, as a fallback). A pushback
// that is present but negative or malformed means "do not retry" (gRFC
// A6): the outcome is then Fatal, wrapping ErrBadPushback, so that no
// policy retries it.
func (c *Classifier) Outcome(err error, header, trailer metadata.MD) sturdy.Outcome {
	if err == nil {
		return sturdy.Outcome{}
	}
	st, ok := status.FromError(err)
	if !ok {
		cl := sturdy.ClassOf(err)
		return sturdy.Outcome{Class: cl, Err: err}
	}
	code := st.Code()
	out := sturdy.Outcome{Class: c.Class(code), Err: err}
	switch code {
	case codes.OK:
		// A non-nil error with an OK status is malformed; treat it as
		// the transport failure it most likely is.
		out.Class = sturdy.Unavailable
	case codes.InvalidArgument:
		if c.TooLarge != nil && c.TooLarge(st) {
			out.Class = sturdy.TooLarge
			// A message that names the window ("maximum context length
			// is 4096 tokens") teaches the fallback chain the tier's.
			if n := toolarge.Window([]byte(strings.ToLower(st.Message()))); n > 0 {
				out.Err = &chain.WindowError{Limit: n, Err: err}
			}
		}
	case codes.ResourceExhausted:
		v, present := pushback(trailer)
		if !present {
			v, present = pushback(header)
		}
		if present {
			if d, ok := sturdy.ParseRetryAfterMs(v); ok {
				out.RetryAfter = d
			} else {
				out.Class = sturdy.Fatal
				out.Err = &pushbackError{err: err}
			}
		}
	}
	return out
}

func pushback(md metadata.MD) (string, bool) {
	vs := md[sturdy.MetadataRetryPushbackMs]
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// pushbackError keeps the status of the attempt (for the caller's code)
// while matching ErrBadPushback.
type pushbackError struct{ err error }

func (e *pushbackError) Error() string {
	return e.err.Error() + " (" + ErrBadPushback.Error() + ")"
}
func (e *pushbackError) Unwrap() []error { return []error{e.err, ErrBadPushback} }
func (e *pushbackError) GRPCStatus() *status.Status {
	st, _ := status.FromError(e.err)
	return st
}
