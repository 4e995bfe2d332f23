package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/health"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTest(t *testing.T) (*Telemetry, *tracetest.SpanRecorder, *sdkmetric.ManualReader, *health.Tracker) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	tr, err := health.New(health.Config{})
	require.NoError(t, err)
	tr.Add("a")
	tr.Add("b")
	tel, err := New(Config{TracerProvider: tp, MeterProvider: mp, Health: tr, Tiers: []Tier{
		{Name: "primary", Endpoints: []string{"a"}},
		{Name: "fallback", Endpoints: []string{"b"}},
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Close() })
	return tel, sr, rd, tr
}

func sumOf(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var pts []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				pts = d.DataPoints
			case metricdata.Gauge[int64]:
				pts = d.DataPoints
			}
		points:
			for _, p := range pts {
				for _, kv := range want {
					if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
						continue points
					}
				}
				total += p.Value
			}
		}
	}
	return total
}

func TestCallAndAttemptSpansNestAndCarryAttributes(t *testing.T) {
	tel, sr, rd, _ := newTest(t)
	ep := &sturdy.Endpoint{Name: "a"}
	ctx, call := tel.StartCall(context.Background())
	h := tel.Hooks()
	a1 := degrade.Attempt{Endpoint: ep, Kind: sturdy.First, N: 1, Tier: 0}
	actx := h.Start(ctx, a1)
	h.End(actx, a1, sturdy.Outcome{Class: sturdy.Unavailable, Latency: time.Millisecond}, false)
	a2 := degrade.Attempt{Endpoint: &sturdy.Endpoint{Name: "b"}, Kind: sturdy.Hedge, N: 1, Tier: 1}
	actx = h.Start(ctx, a2)
	h.End(actx, a2, sturdy.Outcome{Class: sturdy.Success, Latency: time.Millisecond}, true)
	tel.OnFallback(degrade.Fallback{From: 0, To: 1, Reason: degrade.ReasonFailed})
	tel.RecordCall(call, 1, "b", sturdy.Success, 2)
	call.End()

	spans := sr.Ended()
	require.Len(t, spans, 3)
	callSpan := spans[2]
	assert.Equal(t, SpanCall, callSpan.Name())
	for _, s := range spans[:2] {
		assert.Equal(t, SpanAttempt, s.Name())
		assert.Equal(t, callSpan.SpanContext().SpanID(), s.Parent().SpanID())
	}
	attrs := attribute.NewSet(spans[1].Attributes()...)
	v, _ := attrs.Value(KeyEndpoint)
	assert.Equal(t, "b", v.AsString())
	v, _ = attrs.Value(KeyTier)
	assert.Equal(t, "fallback", v.AsString())
	v, _ = attrs.Value(KeyAttemptKind)
	assert.Equal(t, "hedge", v.AsString())
	v, _ = attrs.Value(KeyWon)
	assert.True(t, v.AsBool())
	v, _ = attrs.Value(KeyOutcome)
	assert.Equal(t, "success", v.AsString())

	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricCalls, KeyTier.String("fallback"), KeyOutcome.String("success")))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricAttempts, KeyEndpoint.String("a"), KeyOutcome.String("unavailable")))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricHedges, KeyEndpoint.String("b")))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricFallbacks, KeyFallbackFrom.String("primary"), KeyFallbackTo.String("fallback"), KeyFallbackReason.String("failed")))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricEndpointState, KeyEndpoint.String("a"), KeyState.String("healthy")))
	assert.EqualValues(t, 0, sumOf(t, rm, MetricEndpointState, KeyEndpoint.String("a"), KeyState.String("ejected")))
}

func TestEjectionsAreCounted(t *testing.T) {
	tel, _, rd, _ := newTest(t)
	tel.OnStateChange(health.StateChange{Endpoint: "a", From: health.Healthy, To: health.Ejected, Reason: health.ReasonAuth})
	tel.OnStateChange(health.StateChange{Endpoint: "a", From: health.Ejected, To: health.Probation, Reason: health.ReasonExpired})
	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricEjections, KeyEndpoint.String("a"), KeyEjectionReason.String("auth")))
}

func TestNoopProvidersAllocateLittle(t *testing.T) {
	tel, err := New(Config{Tiers: []Tier{{Name: "t", Endpoints: []string{"a"}}}})
	require.NoError(t, err)
	defer tel.Close()
	ep := &sturdy.Endpoint{Name: "a"}
	h := tel.Hooks()
	allocs := testing.AllocsPerRun(100, func() {
		ctx, call := tel.StartCall(context.Background())
		a := degrade.Attempt{Endpoint: ep, N: 1}
		actx := h.Start(ctx, a)
		h.End(actx, a, sturdy.Outcome{}, true)
		tel.RecordCall(call, 0, "a", sturdy.Success, 1)
		call.End()
	})
	assert.LessOrEqual(t, allocs, 3.0) // the global tracer's call span
}
