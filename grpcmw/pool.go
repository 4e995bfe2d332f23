package grpcmw

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/health"
)

// endpoint is what an attempt needs of the endpoint the balancer picked.
type endpoint struct {
	cc     grpc.ClientConnInterface
	md     []string // key, value, ... for metadata.AppendToOutgoingContext
	member *health.Member
}

// outgoing adds the endpoint's own metadata to ctx.
func (e *endpoint) outgoing(ctx context.Context) context.Context {
	if len(e.md) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, e.md...)
}

// pool is one tier's endpoints: the balancer that picks among them and
// the conn behind each name. It is degrade's Picker for the tier.
type pool struct {
	b     *balancer.Balancer
	conns map[string]*endpoint // read-only after build
}

// Pick implements failover.Picker.
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
