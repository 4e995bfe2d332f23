package grpcmw_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/ratelimit"
)

// modelServer answers UnaryCall with its name and the model it was asked
// for, or fails with code.
type modelServer struct {
	testpb.UnimplementedTestServiceServer
	name string
	code codes.Code
}

func (s *modelServer) UnaryCall(_ context.Context, r *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s.code != codes.OK {
		return nil, status.Error(s.code, s.name+" is down")
	}
	return &testpb.SimpleResponse{ServerId: s.name, Payload: r.GetPayload()}, nil
}

// serve starts s on an in-memory listener and returns a conn to it and a
// function that stops both.
func serve(s *modelServer) (*grpc.ClientConn, func()) {
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	cc, err := grpc.NewClient("passthrough:///"+s.name,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	return cc, func() { _ = cc.Close(); srv.Stop() }
}

// A call goes to the next replica when the first is down.
func Example_failover() {
	down, stopA := serve(&modelServer{name: "replica-a", code: codes.Unavailable})
	defer stopA()
	up, stopB := serve(&modelServer{name: "replica-b"})
	defer stopB()

	c, err := grpcmw.New(
		grpcmw.WithEndpoints(grpcmw.Conn("replica-a", down), grpcmw.Conn("replica-b", up)),
		// Round-robin from the first endpoint, so the output is stable.
		grpcmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
	)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	resp, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), &testpb.SimpleRequest{})
	fmt.Println(resp.GetServerId(), err)
	// Output: replica-b <nil>
}

// When the primary model's tier cannot serve, the call falls back to a
// smaller model, with the request rewritten for it.
func Example_fallbackTier() {
	big, stopBig := serve(&modelServer{name: "big-1", code: codes.ResourceExhausted})
	defer stopBig()
	small, stopSmall := serve(&modelServer{name: "small-1"})
	defer stopSmall()

	c, err := grpcmw.New(
		grpcmw.WithTier(degrade.Tier{Name: "big", Model: "llama-70b"}, grpcmw.Conn("big-1", big)),
		grpcmw.WithTier(degrade.Tier{Name: "small", Model: "llama-8b"}, grpcmw.Conn("small-1", small)),
		grpcmw.WithModelRewrite(func(tier degrade.Tier, method string, req any) (any, error) {
			// Never modify req: return a copy naming the tier's model.
			return &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(tier.Model)}}, nil
		}),
	)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	resp, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), &testpb.SimpleRequest{})
	fmt.Println(resp.GetServerId(), string(resp.GetPayload().GetBody()), err)
	// Output: small-1 llama-8b <nil>
}

// A failed call is a gRPC status error that also carries every attempt.
func ExampleStatusError() {
	a, stopA := serve(&modelServer{name: "a", code: codes.Unavailable})
	defer stopA()
	b, stopB := serve(&modelServer{name: "b", code: codes.Unavailable})
	defer stopB()

	c, err := grpcmw.New(
		grpcmw.WithEndpoints(grpcmw.Conn("a", a), grpcmw.Conn("b", b)),
		grpcmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
	)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	_, err = testpb.NewTestServiceClient(c).UnaryCall(context.Background(), &testpb.SimpleRequest{})
	fmt.Println(status.Code(err))
	var se *sturdy.Error
	if errors.As(err, &se) {
		for _, at := range se.Attempts {
			fmt.Println(at.Endpoint, at.Kind, at.Class)
		}
	}
	// Output:
	// Unavailable
	// a first unavailable
	// b retry unavailable
}

// Two deployments behind one API key draw on one quota: with one
// QuotaKey they are paced as one. Here the key allows one call a minute
// (a Limit given once, on either deployment); the second call does not go
// to the other deployment but falls back to the next tier.
func Example_quotaKey() {
	d1, stop1 := serve(&modelServer{name: "big-1"})
	defer stop1()
	d2, stop2 := serve(&modelServer{name: "big-2"})
	defer stop2()
	small, stopSmall := serve(&modelServer{name: "small-1"})
	defer stopSmall()

	east, west := grpcmw.Conn("big-1", d1), grpcmw.Conn("big-2", d2)
	east.QuotaKey, west.QuotaKey = "org-1", "org-1"
	east.Limit = ratelimit.Limit{RequestsPerSecond: 1.0 / 60, Burst: 1}
	c, err := grpcmw.New(
		grpcmw.WithTier(degrade.Tier{Name: "big"}, east, west),
		grpcmw.WithTier(degrade.Tier{Name: "small"}, grpcmw.Conn("small-1", small)),
		grpcmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
	)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	stub := testpb.NewTestServiceClient(c)
	for range 2 {
		resp, err := stub.UnaryCall(context.Background(), &testpb.SimpleRequest{})
		fmt.Println(resp.GetServerId(), err)
	}
	// Output:
	// big-1 <nil>
	// small-1 <nil>
}
