package grpcmw

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
)

// HealthProber is a health.Prober that asks each endpoint's server with
// the standard grpc.health.v1 Health/Check RPC (gRFC A17's service). A
// SERVING answer is healthy; NOT_SERVING, SERVICE_UNKNOWN and any error
// are not. A server that does not implement the Health service
// (UNIMPLEMENTED) is healthy: it cannot say otherwise, and grpc-go's own
// client-side health checking makes the same choice. The probe's deadline
// is the context's (health.ProbeConfig.Timeout under RunProbes).
//
// Client uses it for WithProbes; it is exported for use with
// health.Tracker.RunProbes on its own.
type HealthProber struct {
	// Conns maps Endpoint.Name to the conn that reaches the endpoint.
	Conns map[string]grpc.ClientConnInterface
	// Service is the service name to ask about; empty means the server
	// as a whole.
	Service string
}

var _ health.Prober = HealthProber{}

// Probe implements health.Prober.
func (p HealthProber) Probe(ctx context.Context, ep sturdy.Endpoint) error {
	cc := p.Conns[ep.Name]
	if cc == nil {
		return fmt.Errorf("grpcmw: probe %s: no conn for the endpoint", ep.Name)
	}
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: p.Service})
	if status.Code(err) == codes.Unimplemented {
		return nil
	}
	if err != nil {
		return fmt.Errorf("grpcmw: probe %s: %w", ep.Name, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("grpcmw: probe %s: health status %v", ep.Name, s)
	}
	return nil
}
