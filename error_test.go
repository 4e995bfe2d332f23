package sturdy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/sturdyai/sturdy"
)

var allClasses = []sturdy.Class{
	sturdy.Success, sturdy.Unavailable, sturdy.Overloaded, sturdy.Timeout,
	sturdy.TooLarge, sturdy.Auth, sturdy.Fatal, sturdy.Canceled,
}

// TestErrorIsItsClassSentinelOnly checks that an *Error matches the
// sentinel of its class and no other, bare and wrapped.
func TestErrorIsItsClassSentinelOnly(t *testing.T) {
	for _, c := range allClasses {
		t.Run(c.String(), func(t *testing.T) {
			e := &sturdy.Error{Class: c, Endpoint: "a", Err: errors.New("cause")}
			for _, err := range []error{e, fmt.Errorf("call: %w", e)} {
				for _, other := range allClasses {
					s := other.Err()
					if s == nil {
						continue
					}
					if got, want := errors.Is(err, s), other == c; got != want {
						t.Errorf("errors.Is(%v error, %v) = %v, want %v", c, s, got, want)
					}
				}
				if errors.Is(err, nil) {
					t.Errorf("errors.Is(%v error, nil) = true", c)
				}
			}
		})
	}
}

// TestErrorIsThroughCause checks that the deciding error stays matchable:
// a timeout's context.DeadlineExceeded, a transport's io.ErrUnexpectedEOF.
func TestErrorIsThroughCause(t *testing.T) {
	tests := []struct {
		name   string
		err    *sturdy.Error
		target error
	}{
		{"deadline", &sturdy.Error{Class: sturdy.Timeout, Err: context.DeadlineExceeded}, context.DeadlineExceeded},
		{"wrapped deadline", &sturdy.Error{Class: sturdy.Timeout, Err: fmt.Errorf("attempt 2: %w", context.DeadlineExceeded)}, context.DeadlineExceeded},
		{"canceled", &sturdy.Error{Class: sturdy.Canceled, Err: context.Canceled}, context.Canceled},
		{"unexpected EOF", &sturdy.Error{Class: sturdy.Unavailable, Err: io.ErrUnexpectedEOF}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.target)
			}
			if got := tt.err.Unwrap(); got != tt.err.Err {
				t.Errorf("Unwrap() = %v, want the Err field %v", got, tt.err.Err)
			}
			if !errors.Is(fmt.Errorf("outer: %w", tt.err), tt.target) {
				t.Errorf("errors.Is through fmt.Errorf %%w: false")
			}
		})
	}
	// An Error without a cause unwraps to nil and matches only its sentinel.
	e := &sturdy.Error{Class: sturdy.Overloaded}
	if e.Unwrap() != nil {
		t.Errorf("Unwrap() of an Error without Err = %v, want nil", e.Unwrap())
	}
	if errors.Is(e, context.DeadlineExceeded) {
		t.Error("Error without Err matches context.DeadlineExceeded")
	}
}

// TestErrorAs checks that errors.As reaches the *Error through layers of
// wrapping and hands back the same value with all its details.
func TestErrorAs(t *testing.T) {
	orig := &sturdy.Error{
		Op:         "failover",
		Class:      sturdy.Overloaded,
		Endpoint:   "b",
		RetryAfter: 2 * time.Second,
		Err:        errors.New("429 Too Many Requests"),
		Attempts: []sturdy.Attempt{
			{Endpoint: "a", Kind: sturdy.First, Class: sturdy.Unavailable},
			{Endpoint: "b", Kind: sturdy.Retry, Class: sturdy.Overloaded, RetryAfter: 2 * time.Second},
		},
	}
	wrapped := fmt.Errorf("chat: %w", fmt.Errorf("http: %w", orig))

	var e *sturdy.Error
	if !errors.As(wrapped, &e) {
		t.Fatal("errors.As(wrapped, *Error) = false")
	}
	if e != orig {
		t.Fatalf("errors.As gave %p, want the original %p", e, orig)
	}
	if e.RetryAfter != 2*time.Second || len(e.Attempts) != 2 || e.Endpoint != "b" {
		t.Errorf("details lost: %+v", e)
	}
	if got, ok := errors.AsType[*sturdy.Error](wrapped); !ok || got != orig {
		t.Errorf("errors.AsType = %p, %v; want %p, true", got, ok, orig)
	}
}

func TestErrorMessage(t *testing.T) {
	refused := errors.New("dial tcp 10.0.0.1:443: connection refused")
	tooMany := errors.New("429 Too Many Requests")
	tests := []struct {
		name string
		err  *sturdy.Error
		want string
	}{
		{
			name: "class only",
			err:  &sturdy.Error{Class: sturdy.Unavailable},
			want: "sturdy: unavailable",
		},
		{
			name: "op, endpoint, cause",
			err:  &sturdy.Error{Op: "failover", Class: sturdy.Unavailable, Endpoint: "a", Err: refused},
			want: "sturdy: failover: unavailable on a: dial tcp 10.0.0.1:443: connection refused",
		},
		{
			name: "retry after",
			err:  &sturdy.Error{Op: "ratelimit", Class: sturdy.Overloaded, RetryAfter: 1500 * time.Millisecond},
			want: "sturdy: ratelimit: overloaded (retry after 1.5s)",
		},
		{
			name: "one attempt on the deciding endpoint is not repeated",
			err: &sturdy.Error{Class: sturdy.Unavailable, Endpoint: "a", Err: refused,
				Attempts: []sturdy.Attempt{{Endpoint: "a", Kind: sturdy.First, Class: sturdy.Unavailable, Err: refused}}},
			want: "sturdy: unavailable on a: dial tcp 10.0.0.1:443: connection refused",
		},
		{
			name: "one attempt on another endpoint is listed",
			err: &sturdy.Error{Op: "degrade", Class: sturdy.Overloaded,
				Attempts: []sturdy.Attempt{{Endpoint: "a", Kind: sturdy.First, Class: sturdy.Overloaded, Err: tooMany}}},
			want: "sturdy: degrade: overloaded; 1 attempt: 1. a first overloaded (429 Too Many Requests)",
		},
		{
			name: "several attempts, each listed in order",
			err: &sturdy.Error{
				Op: "failover", Class: sturdy.Overloaded, Endpoint: "c", Err: tooMany, RetryAfter: 2 * time.Second,
				Attempts: []sturdy.Attempt{
					{Endpoint: "a", Kind: sturdy.First, Class: sturdy.Unavailable, Err: refused},
					{Endpoint: "b", Kind: sturdy.Hedge, Class: sturdy.Timeout, Err: context.DeadlineExceeded},
					{Endpoint: "c", Kind: sturdy.Retry, Class: sturdy.Overloaded, Err: tooMany, RetryAfter: 2 * time.Second},
					{Endpoint: "d", Kind: sturdy.Retry, Class: sturdy.Canceled},
				},
			},
			want: "sturdy: failover: overloaded on c: 429 Too Many Requests (retry after 2s); 4 attempts: " +
				"1. a first unavailable (dial tcp 10.0.0.1:443: connection refused), " +
				"2. b hedge timeout (context deadline exceeded), " +
				"3. c retry overloaded (429 Too Many Requests), " +
				"4. d retry canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n\t%q\nwant\n\t%q", got, tt.want)
			}
		})
	}
}

// TestErrorMessageOnlyWhatItWasGiven checks that every word of the
// message is either the message's own fixed vocabulary or came from a field
// the Error was given: no latency, no per-attempt wait, nothing invented.
// The policies rely on this to keep credentials and bodies out of errors:
// what they do not put in, never comes out.
func TestErrorMessageOnlyWhatItWasGiven(t *testing.T) {
	e := &sturdy.Error{
		Op:         "opx",
		Class:      sturdy.Auth,
		Endpoint:   "epz",
		RetryAfter: 3 * time.Second,
		Err:        errors.New("errw"),
		Attempts: []sturdy.Attempt{
			{Endpoint: "epy", Kind: sturdy.First, Class: sturdy.Timeout, Latency: 987654321, RetryAfter: 11 * time.Minute, Err: errors.New("erru")},
			{Endpoint: "epz", Kind: sturdy.Hedge, Class: sturdy.Auth, Latency: 123456789, RetryAfter: 13 * time.Minute, Err: errors.New("errw")},
			{Endpoint: "epx", Kind: sturdy.Retry, Class: sturdy.Fatal, Latency: 555555555},
		},
	}
	allowed := map[string]bool{
		// fixed vocabulary
		"sturdy": true, "on": true, "retry": true, "after": true, "attempts": true,
		// given: op, endpoints, errors, classes, kinds, the call's wait, attempt numbers
		"opx": true, "epx": true, "epy": true, "epz": true, "errw": true, "erru": true,
		"auth": true, "timeout": true, "fatal": true, "first": true, "hedge": true,
		"3s": true, "1": true, "2": true, "3": true,
	}
	msg := e.Error()
	words := strings.FieldsFunc(msg, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for _, w := range words {
		if !allowed[w] {
			t.Errorf("message %q contains %q, which the Error was not given", msg, w)
		}
	}
	for _, a := range e.Attempts {
		for _, s := range []string{a.Latency.String(), strconv.FormatInt(int64(a.Latency), 10), a.RetryAfter.String()} {
			if strings.Contains(msg, s) {
				t.Errorf("message %q contains per-attempt detail %q", msg, s)
			}
		}
	}
	// Every attempt appears, with endpoint, kind, class and error.
	for i, want := range []string{"1. epy first timeout (erru)", "2. epz hedge auth (errw)", "3. epx retry fatal"} {
		if !strings.Contains(msg, want) {
			t.Errorf("attempt %d: message %q lacks %q", i+1, msg, want)
		}
	}
}
