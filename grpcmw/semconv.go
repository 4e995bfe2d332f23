package grpcmw

import (
	"context"
	"net"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// statusNames are the gRPC status codes as the RPC conventions spell
// rpc.response.status_code.
var statusNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func statusName(c codes.Code) string {
	if int(c) < len(statusNames) {
		return statusNames[c]
	}
	return "UNKNOWN"
}

// serverAttrs are server.address and server.port of a gRPC target
// ("host:port", "dns:///host:port", "passthrough:///host:port"); a target
// without a port gets gRPC's default, 443.
func serverAttrs(cc grpc.ClientConnInterface, address string) []attribute.KeyValue {
	target := address
	if target == "" {
		if t, ok := cc.(interface{ Target() string }); ok {
			target = t.Target()
		}
	}
	if target == "" {
		return nil
	}
	if i := strings.Index(target, ":///"); i >= 0 {
		target = target[i+4:]
	} else if i := strings.Index(target, "://"); i >= 0 {
		target = target[i+3:]
		if j := strings.IndexByte(target, '/'); j >= 0 {
			target = target[j+1:]
		}
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(target)}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(host)}
	}
	return []attribute.KeyValue{semconv.ServerAddress(host), semconv.ServerPort(p)}
}

// methodAttrs are an endpoint's attempt-span attributes for one method:
// server.address, server.port, rpc.system.name and rpc.method. An
// endpoint keeps the last ones it built, as httpmw's endpoints keep their
// request attributes: calls to it mostly share the method, and a slice
// built per attempt escapes to the heap.
type methodAttrs struct {
	method string
	kv     []attribute.KeyValue
}

// attemptSpan puts the RPC client attributes of an attempt on its span,
// if it records, and returns the span (nil when it does not record) for
// endAttemptSpan.
func attemptSpan(ctx context.Context, ep *endpoint, method string) trace.Span {
	sp := trace.SpanFromContext(ctx)
	if !sp.IsRecording() {
		return nil
	}
	if ma := ep.spanAttrs.Load(); ma != nil && ma.method == method {
		sp.SetAttributes(ma.kv...)
		return sp
	}
	kv := make([]attribute.KeyValue, 0, len(ep.server)+2)
	kv = append(kv, ep.server...)
	kv = append(kv, semconv.RPCSystemNameGRPC, semconv.RPCMethod(strings.TrimPrefix(method, "/")))
	ep.spanAttrs.Store(&methodAttrs{method: method, kv: kv})
	sp.SetAttributes(kv...)
	return sp
}

// statusAttrs are rpc.response.status_code of every code, built once.
var statusAttrs = func() (a [len(statusNames)][]attribute.KeyValue) {
	for c, name := range statusNames {
		a[c] = []attribute.KeyValue{semconv.RPCResponseStatusCode(name)}
	}
	return a
}()

// endAttemptSpan records the attempt's gRPC status on sp, if not nil.
func endAttemptSpan(sp trace.Span, err error) {
	if sp == nil {
		return
	}
	if c := status.Code(err); int(c) < len(statusAttrs) {
		sp.SetAttributes(statusAttrs[c]...)
		return
	}
	sp.SetAttributes(semconv.RPCResponseStatusCode(statusName(status.Code(err))))
}
