package grpcmw_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/orca"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/grpcmw"
)

// reportingServer is a grpc-go server that sends a per-call ORCA load
// report, as orca.CallMetricsServerOption makes it, with its queue.
func reportingServer(t *testing.T, id string, queue float64, calls *int, mu *sync.Mutex) *testServer {
	record := grpc.ChainUnaryInterceptor(func(ctx context.Context, r any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		mu.Lock()
		*calls++
		mu.Unlock()
		orca.CallMetricsRecorderFromContext(ctx).SetNamedMetric("num_requests_waiting", queue)
		time.Sleep(2 * time.Millisecond) // a service time, so that calls overlap
		return h(ctx, r)
	})
	return serveBuf(t, newTestServer(id, false, orca.CallMetricsServerOption(nil), record))
}

// With WithLoadReports the Client reads the endpoint-load-metrics-bin
// trailer grpc-go's orca package writes, and P2C prices it: the replica
// reporting a long queue gets little of the traffic; without the option
// the replicas share the calls.
func TestLoadReportsSteerP2C(t *testing.T) {
	for _, on := range []bool{true, false} {
		var mu sync.Mutex
		var busyCalls, idleCalls int
		busy := reportingServer(t, "busy", 50, &busyCalls, &mu)
		idle := reportingServer(t, "idle", 0.5, &idleCalls, &mu)
		opts := []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("busy", busy.dial(t)), grpcmw.Conn("idle", idle.dial(t))),
			grpcmw.WithBalancer(balancer.Config{Seed: 1})}
		if on {
			opts = append(opts, grpcmw.WithLoadReports())
		}
		c := newClient(t, opts...)
		client := testpb.NewTestServiceClient(c)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					_, err := client.UnaryCall(context.Background(), req("x"))
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		mu.Lock()
		share := float64(busyCalls) / float64(busyCalls+idleCalls)
		mu.Unlock()
		require.Equal(t, 200, busyCalls+idleCalls)
		if on {
			assert.Less(t, share, 0.05, "busy replica's share with reports")
		} else {
			assert.Greater(t, share, 0.1, "busy replica's share without reports")
		}
	}
}

// reportingStreamServer is reportingServer for streams, on a loopback
// TCP port: orca.CallMetricsServerOption's stream interceptor sends the
// report in the stream's trailer.
func reportingStreamServer(t *testing.T, id string, queue float64, calls *int, mu *sync.Mutex) *testServer {
	record := grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		mu.Lock()
		*calls++
		mu.Unlock()
		orca.CallMetricsRecorderFromContext(ss.Context()).SetNamedMetric("num_requests_waiting", queue)
		time.Sleep(2 * time.Millisecond) // a service time, so that streams overlap
		return h(srv, ss)
	})
	return startTCP(t, id, orca.CallMetricsServerOption(nil), record)
}

// A stream's load report comes in its trailer, when it ends: with
// WithLoadReports P2C prices it as a unary call's, and the replica
// reporting a long queue gets little of the streams.
func TestStreamLoadReportsSteerP2C(t *testing.T) {
	for _, on := range []bool{true, false} {
		var mu sync.Mutex
		var busyCalls, idleCalls int
		busy := reportingStreamServer(t, "busy", 50, &busyCalls, &mu)
		idle := reportingStreamServer(t, "idle", 0.5, &idleCalls, &mu)
		opts := []grpcmw.Option{insecureDial, grpcmw.WithEndpoints(grpcmw.Target("busy", busy.addr), grpcmw.Target("idle", idle.addr)),
			grpcmw.WithBalancer(balancer.Config{Seed: 1})}
		if on {
			opts = append(opts, grpcmw.WithLoadReports())
		}
		c := newClient(t, opts...)
		client := testpb.NewTestServiceClient(c)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					st, err := client.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
					if !assert.NoError(t, err) {
						return
					}
					msgs, err := recvAll(t, st.Recv)
					assert.NoError(t, err)
					assert.Len(t, msgs, 3)
				}
			})
		}
		wg.Wait()
		mu.Lock()
		share := float64(busyCalls) / float64(busyCalls+idleCalls)
		mu.Unlock()
		require.Equal(t, 200, busyCalls+idleCalls)
		if on {
			assert.Less(t, share, 0.05, "busy replica's share with reports")
		} else {
			assert.Greater(t, share, 0.1, "busy replica's share without reports")
		}
	}
}
