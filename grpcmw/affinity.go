package grpcmw

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy/balancer"
)

// KeyFunc returns the affinity key of a call, for the PrefixAffinity
// balancer (see WithAffinityKey): balancer.PromptKey of the prompt a
// message carries, balancer.SessionKey of a conversation or tenant, or any
// balancer.PrefixKey. gRPC messages have no one shape, so grpcmw cannot
// find a prompt itself. req is the unary call's request or a stream's
// first message (nil if the stream decides its endpoint before sending
// one); read it, never change it. ok false leaves the key to the session
// metadata (balancer.Affinity.SessionHeader), or to none. It is called
// once per call, before the first attempt, on the caller's goroutine.
type KeyFunc func(ctx context.Context, method string, req any) (k balancer.Key, ok bool)

// keyer finds the affinity key of each call. It is nil when the tiers do
// not balance by affinity.
type keyer struct {
	md   string // metadata key of the session; "" for none
	hook KeyFunc
}

// checkAffinity reports what is wrong with the affinity options of cfg,
// before the pipeline is built.
func checkAffinity(cfg *config) []error {
	var errs []error
	a := cfg.Affinity
	if a == nil && cfg.Balancer.Policy == balancer.PrefixAffinity {
		a = &cfg.Balancer.Affinity
	}
	if a != nil && a.SessionHeader != "" && !validMetadataKey(strings.ToLower(a.SessionHeader)) {
		errs = append(errs, fmt.Errorf("grpcmw: WithAffinity: SessionHeader %q is not a valid metadata key", a.SessionHeader))
	}
	if cfg.keyHook != nil && a == nil {
		errs = append(errs, fmt.Errorf("grpcmw: WithAffinityKey is set but no tier balances by affinity; add WithAffinity"))
	}
	return errs
}

// validMetadataKey reports whether k is a metadata key gRPC sends as is:
// lower-case letters, digits, '-', '_' and '.', not a reserved "grpc-" one.
func validMetadataKey(k string) bool {
	if k == "" || strings.HasPrefix(k, "grpc-") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newKeyer(a *balancer.Affinity, hook KeyFunc) *keyer {
	if a == nil {
		return nil
	}
	return &keyer{md: strings.ToLower(a.SessionHeader), hook: hook}
}

// withKey returns ctx carrying the call's key, found once for all its
// attempts and tiers: the hook's, else the session metadata's. A call
// with neither returns ctx, and goes by P2C Peak-EWMA.
func (k *keyer) withKey(ctx context.Context, method string, req any) context.Context {
	if k.hook != nil {
		if key, ok := k.hook(ctx, method, req); ok {
			return balancer.WithKey(ctx, key)
		}
	}
	if k.md != "" {
		if md, ok := metadata.FromOutgoingContext(ctx); ok {
			if v := md.Get(k.md); len(v) > 0 && v[0] != "" {
				return balancer.WithKey(ctx, balancer.SessionKey(v[0]))
			}
		}
	}
	return ctx
}
