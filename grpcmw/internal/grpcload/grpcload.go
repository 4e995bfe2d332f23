// Package grpcload reads the per-call ORCA load report of a gRPC call,
// for grpcmw's Client and its p2c balancer alike.
package grpcload

import (
	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/orca"
)

// Key is the trailer key of a per-call load report, as grpc-go's orca
// package writes it: a serialized xds.data.orca.v3.OrcaLoadReport.
const Key = "endpoint-load-metrics-bin"

// Report reads the load report in a call's trailer: nil for none, for
// more than one, or for one that is malformed.
func Report(trailer metadata.MD) *sturdy.LoadReport {
	v := trailer[Key]
	if len(v) != 1 {
		return nil
	}
	r, ok := orca.ParseProto([]byte(v[0]))
	if !ok {
		return nil
	}
	return &r
}
