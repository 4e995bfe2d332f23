package grpcmw

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/ratelimit"
)

// StatusError is the error of a call that failed: a gRPC status error
// (status.FromError, status.Code and grpc-go's own handling see its
// GRPCStatus) that wraps the *sturdy.Error listing every attempt, so that
// errors.As(err, &sturdyErr) and errors.Is(err, sturdy.ErrUnavailable)
// work too.
//
// The code is the one a gRPC caller expects: the deciding attempt's code;
// UNAVAILABLE when no endpoint could be picked; RESOURCE_EXHAUSTED when a
// rate limit or a server's pushback refused the call; CANCELED or
// DEADLINE_EXCEEDED when the caller's context ended it. The message is the
// *sturdy.Error's, which names every attempt; the details are the deciding
// status's, plus a google.rpc.RetryInfo when some server asked the caller
// to wait.
type StatusError struct {
	st  *status.Status
	err *sturdy.Error
}

// Error formats like a grpc-go status error.
func (e *StatusError) Error() string {
	return "rpc error: code = " + e.st.Code().String() + " desc = " + e.st.Message()
}

// GRPCStatus returns the call's status.
func (e *StatusError) GRPCStatus() *status.Status { return e.st }

// Unwrap returns the *sturdy.Error.
func (e *StatusError) Unwrap() error { return e.err }

// errNoReplay ends a stream attempt that cannot replay what the caller
// sent: the stream sent more than the replay buffer holds.
var errNoReplay = errors.New("grpcmw: the stream sent more than the replay buffer holds before its first response; it cannot fail over")

// statusError turns the error the chain returned into the caller's.
func statusError(ctx context.Context, err error) error {
	se, ok := errors.AsType[*sturdy.Error](err)
	if !ok {
		se = &sturdy.Error{Op: "grpcmw", Class: sturdy.ClassOf(err), Err: err}
	}
	code, base := codeOf(ctx, se)
	var st *status.Status
	if base != nil {
		p := base.Proto()
		p.Code = int32(code)
		p.Message = se.Error()
		st = status.FromProto(p)
	} else {
		st = status.New(code, se.Error())
	}
	if se.RetryAfter > 0 {
		if ws, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(se.RetryAfter)}); err == nil {
			st = ws
		}
	}
	return &StatusError{st: st, err: se}
}

// codeOf decides the caller's code, and the status whose details it
// inherits (nil if none).
func codeOf(ctx context.Context, se *sturdy.Error) (codes.Code, *status.Status) {
	if err := attempt.CallerErr(ctx); err != nil && se.Class == sturdy.Canceled {
		return status.FromContextError(err).Code(), nil
	}
	decider := se.Err
	if errors.Is(decider, errNoReplay) {
		// The last attempt only said it could not replay: the attempt
		// before it decided.
		for i := len(se.Attempts) - 1; i >= 0; i-- {
			if a := se.Attempts[i]; !errors.Is(a.Err, errNoReplay) {
				decider = a.Err
				break
			}
		}
	}
	if st := grpcStatus(decider); st != nil && st.Code() != codes.OK {
		return st.Code(), st
	}
	if errors.Is(decider, ratelimit.ErrLimited) {
		return codes.ResourceExhausted, nil
	}
	switch se.Class {
	case sturdy.Unavailable:
		return codes.Unavailable, nil
	case sturdy.Overloaded:
		return codes.ResourceExhausted, nil
	case sturdy.Timeout:
		return codes.DeadlineExceeded, nil
	case sturdy.TooLarge:
		return codes.InvalidArgument, nil
	case sturdy.Auth:
		return codes.Unauthenticated, nil
	case sturdy.Canceled:
		return codes.Canceled, nil
	}
	return codes.Unknown, nil
}

// grpcStatus finds a status in err's chain without inventing one.
func grpcStatus(err error) *status.Status {
	if err == nil {
		return nil
	}
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) {
		return gs.GRPCStatus()
	}
	return nil
}
