package sturdy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

// TestClassTable pins the outcome classes' contract: the name
// each class carries in spans and metrics, whether it retries elsewhere,
// whether it counts against endpoint health, and its sentinel.
func TestClassTable(t *testing.T) {
	tests := []struct {
		class          sturdy.Class
		name           string
		retryElsewhere bool
		failure        bool
		err            error
	}{
		{sturdy.Success, "success", false, false, nil},
		{sturdy.Unavailable, "unavailable", true, true, sturdy.ErrUnavailable},
		{sturdy.Overloaded, "overloaded", true, false, sturdy.ErrOverloaded},
		{sturdy.Timeout, "timeout", true, true, sturdy.ErrTimeout},
		{sturdy.TooLarge, "too_large", false, false, sturdy.ErrTooLarge},
		{sturdy.Auth, "auth", true, true, sturdy.ErrAuth},
		{sturdy.Fatal, "fatal", false, false, sturdy.ErrFatal},
		{sturdy.Canceled, "canceled", false, false, sturdy.ErrCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.class.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.class.RetryElsewhere(); got != tt.retryElsewhere {
				t.Errorf("RetryElsewhere() = %v, want %v", got, tt.retryElsewhere)
			}
			if got := tt.class.Failure(); got != tt.failure {
				t.Errorf("Failure() = %v, want %v", got, tt.failure)
			}
			if got := tt.class.Err(); got != tt.err {
				t.Errorf("Err() = %v, want %v", got, tt.err)
			}
			// A sentinel classifies back to its own class.
			if tt.err != nil {
				if got := sturdy.ClassOf(tt.err); got != tt.class {
					t.Errorf("ClassOf(%v) = %v, want %v", tt.err, got, tt.class)
				}
			}
		})
	}
}

// TestClassOutOfRange pins what a Class value outside the enum does: it
// has a name that cannot be mistaken for a real class, no sentinel, and
// takes no action.
func TestClassOutOfRange(t *testing.T) {
	for _, c := range []sturdy.Class{sturdy.Canceled + 1, 200, 255} {
		if got := c.String(); got != "unknown" {
			t.Errorf("Class(%d).String() = %q, want \"unknown\"", uint8(c), got)
		}
		if c.RetryElsewhere() || c.Failure() {
			t.Errorf("Class(%d): RetryElsewhere=%v Failure=%v, want false, false",
				uint8(c), c.RetryElsewhere(), c.Failure())
		}
		if err := c.Err(); err != nil {
			t.Errorf("Class(%d).Err() = %v, want nil", uint8(c), err)
		}
	}
}

// TestSentinelsDistinct guards against two classes sharing a sentinel or a
// message, which would make errors.Is ambiguous and logs confusing.
func TestSentinelsDistinct(t *testing.T) {
	seen := map[string]sturdy.Class{}
	for c := sturdy.Unavailable; c <= sturdy.Canceled; c++ {
		err := c.Err()
		if err == nil {
			t.Fatalf("%v.Err() = nil", c)
		}
		msg := err.Error()
		if prev, ok := seen[msg]; ok {
			t.Errorf("%v and %v share the message %q", prev, c, msg)
		}
		seen[msg] = c
		for d := sturdy.Unavailable; d <= sturdy.Canceled; d++ {
			if c != d && errors.Is(err, d.Err()) {
				t.Errorf("errors.Is(%v sentinel, %v sentinel) = true", c, d)
			}
		}
	}
}

// timeoutError is a net.Error, as a dialer or conn deadline returns.
type timeoutError struct{ timeout bool }

func (e timeoutError) Error() string   { return fmt.Sprintf("i/o timeout=%v", e.timeout) }
func (e timeoutError) Timeout() bool   { return e.timeout }
func (e timeoutError) Temporary() bool { return e.timeout }

var _ net.Error = timeoutError{}

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want sturdy.Class
	}{
		{"nil", nil, sturdy.Success},

		{"*Error", &sturdy.Error{Class: sturdy.Overloaded}, sturdy.Overloaded},
		{"*Error wrapped", fmt.Errorf("call: %w", &sturdy.Error{Class: sturdy.TooLarge}), sturdy.TooLarge},
		{"*Error wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", &sturdy.Error{Class: sturdy.Auth})), sturdy.Auth},
		{"*Error in errors.Join", errors.Join(io.EOF, &sturdy.Error{Class: sturdy.Fatal}), sturdy.Fatal},
		// The *Error's class decides, not the error it wraps.
		{"*Error of class Fatal wrapping DeadlineExceeded",
			&sturdy.Error{Class: sturdy.Fatal, Err: context.DeadlineExceeded}, sturdy.Fatal},
		{"*Error of class Unavailable wrapping Canceled",
			&sturdy.Error{Class: sturdy.Unavailable, Err: context.Canceled}, sturdy.Unavailable},

		{"ErrUnavailable", sturdy.ErrUnavailable, sturdy.Unavailable},
		{"ErrOverloaded wrapped", fmt.Errorf("x: %w", sturdy.ErrOverloaded), sturdy.Overloaded},
		{"ErrTimeout", sturdy.ErrTimeout, sturdy.Timeout},
		{"ErrTooLarge", sturdy.ErrTooLarge, sturdy.TooLarge},
		{"ErrAuth", sturdy.ErrAuth, sturdy.Auth},
		{"ErrFatal wrapped", fmt.Errorf("x: %w", sturdy.ErrFatal), sturdy.Fatal},
		{"ErrCanceled", sturdy.ErrCanceled, sturdy.Canceled},

		{"context.Canceled", context.Canceled, sturdy.Canceled},
		{"context.Canceled wrapped", fmt.Errorf("read: %w", context.Canceled), sturdy.Canceled},
		{"context.DeadlineExceeded", context.DeadlineExceeded, sturdy.Timeout},
		{"context.DeadlineExceeded wrapped", fmt.Errorf("read: %w", context.DeadlineExceeded), sturdy.Timeout},
		{"cause of a cancelled context", context.Cause(canceledCtx()), sturdy.Canceled},

		{"net.Error timeout", timeoutError{timeout: true}, sturdy.Timeout},
		{"net.Error timeout wrapped", fmt.Errorf("dial: %w", timeoutError{timeout: true}), sturdy.Timeout},
		{"net.Error not a timeout", timeoutError{timeout: false}, sturdy.Unavailable},
		{"net.DNSError timeout", &net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}, sturdy.Timeout},
		{"net.OpError deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, sturdy.Timeout},
		{"net.OpError refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, sturdy.Unavailable},

		{"plain error", errors.New("boom"), sturdy.Unavailable},
		{"io.EOF", io.EOF, sturdy.Unavailable},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, sturdy.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sturdy.ClassOf(tt.err); got != tt.want {
				t.Errorf("ClassOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestAttemptKindString(t *testing.T) {
	tests := []struct {
		kind sturdy.AttemptKind
		want string
	}{
		{sturdy.First, "first"},
		{sturdy.Retry, "retry"},
		{sturdy.Hedge, "hedge"},
		{sturdy.Hedge + 1, "unknown"},
		{255, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.want {
			t.Errorf("AttemptKind(%d).String() = %q, want %q", uint8(tt.kind), got, tt.want)
		}
	}
}

func TestEndpointEffectiveWeight(t *testing.T) {
	tests := []struct {
		weight, want int
	}{
		{0, 1},
		{1, 1},
		{7, 7},
	}
	for _, tt := range tests {
		e := sturdy.Endpoint{Name: "a", Weight: tt.weight}
		if got := e.EffectiveWeight(); got != tt.want {
			t.Errorf("Endpoint{Weight: %d}.EffectiveWeight() = %d, want %d", tt.weight, got, tt.want)
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	if o := sturdy.OutcomeOf(nil); o.Class != sturdy.Success || o.Err != nil {
		t.Fatalf("sturdy.OutcomeOf(nil) = %+v", o)
	}
	wrapped := fmt.Errorf("call: %w", &sturdy.Error{Class: sturdy.Overloaded, RetryAfter: 3 * time.Second, Err: sturdy.ErrOverloaded})
	if o := sturdy.OutcomeOf(wrapped); o.Class != sturdy.Overloaded || o.RetryAfter != 3*time.Second || o.Err != wrapped {
		t.Fatalf("sturdy.OutcomeOf(wrapped *Error) = %+v", o)
	}
	if o := sturdy.OutcomeOf(context.DeadlineExceeded); o.Class != sturdy.Timeout || o.RetryAfter != 0 {
		t.Fatalf("sturdy.OutcomeOf(DeadlineExceeded) = %+v", o)
	}
}
