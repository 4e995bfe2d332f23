package grpcmw_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/sturdyai/sturdy/grpcmw"
)

// BenchmarkUnary compares a unary call over bufconn made directly with
// one made through the interceptor (default options: P2C Peak-EWMA,
// health tracking, failover policy, no-op telemetry). The difference is
// grpcmw's cost per call.
func BenchmarkUnary(b *testing.B) {
	s := startBuf(b, "a")
	cc := s.dial(b)
	in := req("hello")
	run := func(b *testing.B, stub testpb.TestServiceClient) {
		ctx := context.Background()
		if _, err := stub.UnaryCall(ctx, in); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := stub.UnaryCall(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, testpb.NewTestServiceClient(cc)) })
	b.Run("interceptor", func(b *testing.B) {
		c, err := grpcmw.New(grpcmw.WithEndpoints(grpcmw.Conn("a", cc)))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		outer, err := grpc.NewClient("passthrough:///sturdy", append(c.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			b.Fatal(err)
		}
		defer outer.Close()
		run(b, testpb.NewTestServiceClient(outer))
	})
	b.Run("client", func(b *testing.B) {
		c, err := grpcmw.New(grpcmw.WithEndpoints(grpcmw.Conn("a", cc)))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, testpb.NewTestServiceClient(c))
	})
}

// nopConn answers every call at once, without a network: it isolates
// grpcmw's own cost from grpc-go's.
type nopConn struct{}

func (nopConn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error { return nil }
func (nopConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, nil
}

// BenchmarkOverhead is grpcmw's own cost per unary call (what a call
// through Client costs beyond the endpoint conn's Invoke).
func BenchmarkOverhead(b *testing.B) {
	c, err := grpcmw.New(grpcmw.WithEndpoints(grpcmw.Conn("a", nopConn{}), grpcmw.Conn("b", nopConn{})))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	in, out := req("hello"), new(testpb.SimpleResponse)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Invoke(ctx, "/grpc.testing.TestService/UnaryCall", in, out); err != nil {
			b.Fatal(err)
		}
	}
}
