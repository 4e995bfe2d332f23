package grpcmw_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/hedge"
)

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestSpansAndMetrics(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable, failAfter: 0})
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) }()

	c := newClient(t, roundRobin, grpcmw.WithFailover(noBudget(t, 3)), grpcmw.WithTracerProvider(tp), grpcmw.WithMeterProvider(mp),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))))
	stub := testpb.NewTestServiceClient(c)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	_, err := stub.UnaryCall(ctx, req("x"))
	require.NoError(t, err)
	st, err := stub.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	for {
		if _, err := st.Recv(); err == io.EOF {
			break
		}
	}
	parent.End()

	var calls, attempts []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		switch s.Name() {
		case "sturdy.call":
			calls = append(calls, s)
			assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "call span not under the caller's")
		case "sturdy.attempt":
			attempts = append(attempts, s)
		}
	}
	require.Len(t, calls, 2)
	require.Len(t, attempts, 4) // a fails, b wins; for the unary call and the stream
	for _, call := range calls {
		at := attrs(call)
		assert.Equal(t, "b", at["sturdy.endpoint"].AsString())
		assert.Equal(t, "success", at["sturdy.outcome"].AsString())
		assert.Contains(t, at["rpc.method"].AsString(), "/grpc.testing.TestService/")
	}
	won := 0
	for _, s := range attempts {
		at := attrs(s)
		assert.Equal(t, trace.SpanKindClient, s.SpanKind())
		assert.Equal(t, "grpc", at["rpc.system.name"].AsString())
		assert.Regexp(t, `^grpc\.testing\.TestService/(UnaryCall|StreamingOutputCall)$`, at["rpc.method"].AsString())
		assert.NotEmpty(t, at["server.address"].AsString())
		if at["sturdy.attempt.won"].AsBool() {
			won++
			assert.Equal(t, "b", at["sturdy.endpoint"].AsString())
			if at["rpc.method"].AsString() == "grpc.testing.TestService/UnaryCall" {
				assert.Equal(t, "OK", at["rpc.response.status_code"].AsString())
			}
		} else {
			assert.Equal(t, "unavailable", at["sturdy.outcome"].AsString())
			assert.Equal(t, "UNAVAILABLE", at["rpc.response.status_code"].AsString())
			assert.Equal(t, "unavailable", at["error.type"].AsString())
		}
	}
	assert.Equal(t, 2, won)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	names := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, grpcmw.Scope, sm.Scope.Name)
		assert.NotEmpty(t, sm.Scope.Version)
		for _, m := range sm.Metrics {
			names[m.Name] = true
		}
	}
	for _, want := range []string{"sturdy.calls", "sturdy.attempts", "sturdy.call.duration", "sturdy.call.time_to_first_byte", "sturdy.attempt.duration"} {
		assert.True(t, names[want], "metric %s missing", want)
	}
}

func TestWithoutAttemptHistogramsKeepsTheCounter(t *testing.T) {
	a := startBuf(t, "a")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	c := newClient(t, roundRobin, grpcmw.WithMeterProvider(mp), grpcmw.WithoutAttemptHistograms(),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
	_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
	require.NoError(t, err)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	names := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names[m.Name] = true
		}
	}
	assert.False(t, names["sturdy.attempt.duration"])
	assert.True(t, names["sturdy.attempts"])
	assert.True(t, names["sturdy.call.time_to_first_byte"])
}

// A hedged call has two attempt spans under its call span: the hedge
// that won, and the first attempt, which it cancelled, marked so (as
// httpmw's TestHedgedCallShowsTheLoserCancelled).
func TestHedgedCallShowsTheLoserCancelled(t *testing.T) {
	slow, fast := startBuf(t, "slow"), startBuf(t, "fast")
	slow.set(behavior{delay: 2 * time.Second})
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	c := newClient(t, roundRobin, grpcmw.WithTracerProvider(tp),
		grpcmw.WithHedge(hedge.Config{Delay: 20 * time.Millisecond, BudgetRatio: -1}),
		grpcmw.WithEndpoints(grpcmw.Conn("slow", slow.dial(t)), grpcmw.Conn("fast", fast.dial(t))))
	stub := testpb.NewTestServiceClient(c)

	named := func(name string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range sr.Ended() {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return out
	}
	// Round-robin alternates: within two calls one goes first to slow and
	// is hedged on fast.
	var call sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for i := 0; i < 4 && attempts == nil; i++ {
		sr.Reset()
		resp, err := stub.UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
		require.Equal(t, "fast", resp.GetServerId())
		eventually(t, "the call span", func() bool { return len(named("sturdy.call")) == 1 })
		call = named("sturdy.call")[0]
		if attrs(call)["sturdy.attempts"].AsInt64() == 2 {
			eventually(t, "two attempt spans", func() bool { return len(named("sturdy.attempt")) == 2 })
			attempts = named("sturdy.attempt")
		}
	}
	require.Len(t, attempts, 2, "no call went first to slow and was hedged on fast")
	byEndpoint := map[string]map[attribute.Key]attribute.Value{}
	for _, a := range attempts {
		assert.Equal(t, call.SpanContext().SpanID(), a.Parent().SpanID(), "an attempt span under its call span")
		assert.Equal(t, trace.SpanKindClient, a.SpanKind())
		at := attrs(a)
		assert.Equal(t, "grpc", at["rpc.system.name"].AsString())
		assert.Equal(t, "grpc.testing.TestService/UnaryCall", at["rpc.method"].AsString())
		byEndpoint[at["sturdy.endpoint"].AsString()] = at
	}
	loser, winner := byEndpoint["slow"], byEndpoint["fast"]
	require.NotNil(t, loser)
	require.NotNil(t, winner)
	assert.Equal(t, "first", loser["sturdy.attempt.kind"].AsString())
	assert.Equal(t, "canceled", loser["sturdy.outcome"].AsString())
	assert.False(t, loser["sturdy.attempt.won"].AsBool())
	assert.Equal(t, "CANCELLED", loser["rpc.response.status_code"].AsString())
	_, hasErrorType := loser["error.type"]
	assert.False(t, hasErrorType, "a lost hedge is not the server's error")
	assert.Equal(t, "hedge", winner["sturdy.attempt.kind"].AsString())
	assert.Equal(t, "success", winner["sturdy.outcome"].AsString())
	assert.True(t, winner["sturdy.attempt.won"].AsBool())
	assert.Equal(t, "OK", winner["rpc.response.status_code"].AsString())
	for _, a := range attempts {
		if attrs(a)["sturdy.endpoint"].AsString() == "slow" {
			assert.Equal(t, "Unset", a.Status().Code.String(), "a cancelled hedge leaves the status unset")
		}
	}
}
