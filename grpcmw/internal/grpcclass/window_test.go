package grpcclass

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/chain"
)

// A TooLarge status whose message names the context window carries it
// for the fallback chain, and still reads as the server's status.
func TestTooLargeCarriesTheNamedWindow(t *testing.T) {
	c := Default()
	c.TooLarge = func(s *status.Status) bool { return strings.Contains(s.Message(), "context length") }
	err := status.Error(codes.InvalidArgument, "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.")
	o := c.Outcome(err, nil, nil)
	if o.Class != sturdy.TooLarge {
		t.Fatalf("class %v", o.Class)
	}
	var we *chain.WindowError
	if !errors.As(o.Err, &we) || we.Limit != 4096 {
		t.Fatalf("window: %v", o.Err)
	}
	if st, ok := status.FromError(o.Err); !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("status lost: %v", o.Err)
	}
	o = c.Outcome(status.Error(codes.InvalidArgument, "context length exceeded"), nil, nil)
	if errors.As(o.Err, &we) {
		t.Fatalf("no window named, none carried: %v", o.Err)
	}
}
