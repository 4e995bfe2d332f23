// Command grpc sends a gRPC "inference" load through sturdy's grpcmw
// interceptors to three local servers: one fast, one slow, and one that
// drains (its grpc.health.v1 status goes NOT_SERVING, then it refuses calls)
// for a while and comes back. It prints, second by second, who served the
// calls, how many hedges won, and the health state of each server, and
// every ejection and restoration as it happens.
//
//	go run ./examples/grpc            # about 6 s
//	go run ./examples/grpc -h         # flags
//
// The service is grpc-go's own interop TestService (UnaryCall for requests,
// StreamingOutputCall for a token stream), so the example needs no generated
// code of its own. Everything listens on 127.0.0.1 and stops by itself.
package main

import "github.com/sturdyai/sturdy/examples/internal/cli"

func main() { cli.Main("grpc", run) }
