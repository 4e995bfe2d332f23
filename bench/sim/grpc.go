package sim

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	_ "github.com/sturdyai/sturdy/grpcmw/p2c" // registers sturdy_p2c_ewma
)

// InferMethod is the full name of the simulated unary inference RPC. It
// takes and returns a google.protobuf.BytesValue, so no generated code is
// needed.
const InferMethod = "/sim.Infer/Infer"

// InferHandler serves one call; it returns the backend's name or a status
// error.
type InferHandler func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)

// RegisterInfer registers h as the sim.Infer service on s.
func RegisterInfer(s *grpc.Server, h InferHandler) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "sim.Infer",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Infer",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.BytesValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				return h(ctx, in)
			},
		}},
	}, struct{}{})
}

// NewGRPCBackend starts a backend serving sim.Infer on 127.0.0.1.
func NewGRPCBackend(cfg BackendConfig, series *Series) (*Backend, error) {
	b := newModel(cfg, series)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.Addr = ln.Addr().String()
	s := grpc.NewServer()
	answer := wrapperspb.Bytes([]byte(`{"choices":[{"message":{"content":"ok"}}]}`))
	RegisterInfer(s, func(ctx context.Context, _ *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("backend", cfg.Name))
		switch b.handle(ctx) {
		case replyLimited:
			return nil, status.Error(codes.ResourceExhausted, "rate limited")
		case replyFailed:
			return nil, status.Error(codes.Unavailable, "server error")
		case replyGone:
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return answer, nil
	})
	go func() { _ = s.Serve(ln) }()
	b.stop = s.Stop
	return b, nil
}

var schemes atomic.Int64

// DialPool returns a conn over addrs through a manual resolver, balanced
// by the named grpc-go load-balancing policy ("round_robin",
// "sturdy_p2c_ewma", ...).
func DialPool(addrs []string, policy string) (*grpc.ClientConn, error) {
	r := manual.NewBuilderWithScheme(fmt.Sprintf("sim%d", schemes.Add(1)))
	st := resolver.State{}
	for _, a := range addrs {
		st.Endpoints = append(st.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	r.InitialState(st)
	return grpc.NewClient(r.Scheme()+":///pool",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, policy)))
}

// GRPCCall returns a CallFunc that sends sim.Infer over cc.
func GRPCCall(cc grpc.ClientConnInterface) CallFunc {
	in := wrapperspb.Bytes(body)
	return func(ctx context.Context) (string, error) {
		var md metadata.MD
		out := new(wrapperspb.BytesValue)
		err := cc.Invoke(ctx, InferMethod, in, out, grpc.Header(&md))
		served := ""
		if v := md.Get("backend"); len(v) > 0 {
			served = v[0]
		}
		return served, err
	}
}
