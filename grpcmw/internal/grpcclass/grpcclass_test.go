package grpcclass

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
)

func TestOutcomeFollowsTheDesignTable(t *testing.T) {
	c := Default()
	c.TooLarge = func(s *status.Status) bool { return strings.Contains(s.Message(), "context length") }
	pb := func(v string) metadata.MD { return metadata.Pairs(sturdy.MetadataRetryPushbackMs, v) }
	tests := []struct {
		name            string
		err             error
		header, trailer metadata.MD
		class           sturdy.Class
		retryAfter      time.Duration
		badPushback     bool
	}{
		{"ok", nil, nil, nil, sturdy.Success, 0, false},
		{"unavailable", status.Error(codes.Unavailable, ""), nil, nil, sturdy.Unavailable, 0, false},
		{"internal", status.Error(codes.Internal, ""), nil, nil, sturdy.Unavailable, 0, false},
		{"unknown", status.Error(codes.Unknown, ""), nil, nil, sturdy.Unavailable, 0, false},
		{"exhausted", status.Error(codes.ResourceExhausted, ""), nil, nil, sturdy.Overloaded, 0, false},
		{"exhausted with pushback", status.Error(codes.ResourceExhausted, ""), nil, pb("1500"), sturdy.Overloaded, 1500 * time.Millisecond, false},
		{"pushback in header", status.Error(codes.ResourceExhausted, ""), pb("20"), nil, sturdy.Overloaded, 20 * time.Millisecond, false},
		{"negative pushback", status.Error(codes.ResourceExhausted, ""), nil, pb("-1"), sturdy.Fatal, 0, true},
		{"garbage pushback", status.Error(codes.ResourceExhausted, ""), nil, pb("soon"), sturdy.Fatal, 0, true},
		{"deadline", status.Error(codes.DeadlineExceeded, ""), nil, nil, sturdy.Timeout, 0, false},
		{"unauthenticated", status.Error(codes.Unauthenticated, ""), nil, nil, sturdy.Auth, 0, false},
		{"permission", status.Error(codes.PermissionDenied, ""), nil, nil, sturdy.Auth, 0, false},
		{"invalid", status.Error(codes.InvalidArgument, "bad field"), nil, nil, sturdy.Fatal, 0, false},
		{"too large", status.Error(codes.InvalidArgument, "context length exceeded"), nil, nil, sturdy.TooLarge, 0, false},
		{"canceled", status.Error(codes.Canceled, ""), nil, nil, sturdy.Canceled, 0, false},
		{"not found", status.Error(codes.NotFound, ""), nil, nil, sturdy.Fatal, 0, false},
		{"unimplemented", status.Error(codes.Unimplemented, ""), nil, nil, sturdy.Fatal, 0, false},
		{"plain context error", context.Canceled, nil, nil, sturdy.Canceled, 0, false},
		{"plain error", errors.New("boom"), nil, nil, sturdy.Unavailable, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := c.Outcome(tt.err, tt.header, tt.trailer)
			if o.Class != tt.class || o.RetryAfter != tt.retryAfter {
				t.Fatalf("got %v, %v; want %v, %v", o.Class, o.RetryAfter, tt.class, tt.retryAfter)
			}
			if got := errors.Is(o.Err, ErrBadPushback); got != tt.badPushback {
				t.Fatalf("ErrBadPushback: %v", got)
			}
			if tt.err != nil && status.Code(o.Err) != status.Code(tt.err) {
				t.Fatalf("code lost: %v", o.Err)
			}
		})
	}
}

func TestSetOverridesTheTable(t *testing.T) {
	c := Default()
	c.Set(codes.Internal, sturdy.Fatal)
	c.Set(codes.Code(99), sturdy.Success) // ignored
	if got := c.Outcome(status.Error(codes.Internal, ""), nil, nil).Class; got != sturdy.Fatal {
		t.Fatalf("got %v", got)
	}
	if got := c.Class(codes.Code(99)); got != sturdy.Fatal {
		t.Fatalf("got %v", got)
	}
}
