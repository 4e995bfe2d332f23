package grpcmw

import (
	"go.opentelemetry.io/otel/attribute"

	"context"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
)

// endpoint is what an attempt needs of the endpoint the balancer picked.
type endpoint struct {
	cc    grpc.ClientConnInterface
	md    []string // key, value, ... for metadata.AppendToOutgoingContext
	strip []string // metadata keys of the caller's that must not reach this endpoint
	// server are its server.address and server.port, for attempt spans.
	server []attribute.KeyValue
	// spanAttrs are the last attempt span's attributes (semconv.go).
	spanAttrs atomic.Pointer[methodAttrs]
	// gate decides which attempts read the response headers (listen.go).
	gate listenGate
}

// outgoing gives ctx the endpoint's own metadata, replacing the caller's
// values of the same keys and dropping the caller's credentials. The
// caller's metadata is copied only when it holds such a key.
func (e *endpoint) outgoing(ctx context.Context) context.Context {
	for _, k := range e.strip {
		if len(metadata.ValueFromOutgoingContext(ctx, k)) > 0 {
			md, _ := metadata.FromOutgoingContext(ctx) // a copy
			for _, k := range e.strip {
				delete(md, k)
			}
			for i := 0; i+1 < len(e.md); i += 2 {
				md.Append(e.md[i], e.md[i+1])
			}
			return metadata.NewOutgoingContext(ctx, md)
		}
	}
	if len(e.md) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, e.md...)
}

// pool is one tier's endpoints: the balancer that picks among them and
// the conn behind each name.
type pool struct {
	b     *balancer.Balancer
	conns map[string]*endpoint // read-only after build
	// hedged: the tier may hedge, so its unary attempts decode into
	// replies of their own; a tier that does not decodes straight into
	// the caller's.
	hedged bool
}

// Pick implements sturdy.Picker.
func (p *pool) Pick(ctx context.Context, exclude []string) (*sturdy.Endpoint, func(sturdy.Outcome), error) {
	return p.b.Pick(ctx, exclude)
}

// Ready reports whether health allows any endpoint of the pool (not all
// are ejected or cooling down after RESOURCE_EXHAUSTED): degrade skips a
// tier that is not ready, unless it is the last, rather than spend an
// attempt on it (the balancer's panic mode would otherwise send it anyway).
func (p *pool) Ready() bool { return p.b.Ready() }

func (p *pool) endpoint(ep *sturdy.Endpoint) *endpoint {
	return p.conns[ep.Name]
}
