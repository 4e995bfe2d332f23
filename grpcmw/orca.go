package grpcmw

import (
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/orca"
)

// loadKey is the trailer key of a per-call ORCA load report, as grpc-go's
// orca package writes it (a serialized OrcaLoadReport).
var loadKey = strings.ToLower(orca.HeaderBin)

// loadReport reads the load report in a call's trailer (nil for none, or
// one that is malformed).
func loadReport(trailer metadata.MD) *sturdy.LoadReport {
	v := trailer[loadKey]
	if len(v) != 1 {
		return nil
	}
	r, ok := orca.ParseProto([]byte(v[0]))
	if !ok {
		return nil
	}
	return &r
}
