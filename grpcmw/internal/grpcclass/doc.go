// Package grpcclass turns the end of a gRPC call into a sturdy.Outcome,
// following the outcome classes of package sturdy. grpcmw's interceptors and its
// grpc-go balancer (grpcmw/p2c) share it so that both classify alike.
package grpcclass
