package httpmw

import (
	"context"
	"strings"
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

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/telemetry"
	"github.com/sturdyai/sturdy/sturdytest"
)

func TestSpansAndMetricsAreRecordedWithoutSensitiveData(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	down := startLLM(t, sturdytest.Config{Name: "down", Down: sturdytest.Down503, RequiredAPIKey: "secret-a"})
	up := startLLM(t, sturdytest.Config{Name: "up", RequiredAPIKey: "secret-b"})
	fb := startLLM(t, sturdytest.Config{Name: "fb", RequiredAPIKey: "secret-c"})
	tr := newTr(t, WithTracerProvider(tp), WithMeterProvider(mp),
		WithTier(degrade.Tier{Name: "primary"}, ep("down", down.URL(), "secret-a"), ep("up", up.URL(), "secret-b")),
		WithTier(degrade.Tier{Name: "fallback", Model: "small"}, ep("fb", fb.URL(), "secret-c")))

	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	resp, err := tr.RoundTrip(chatReq(t, "m", true).WithContext(ctx))
	require.NoError(t, err)
	readAll(t, resp)
	parent.End()

	spans := sr.Ended()
	var call sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range spans {
		switch s.Name() {
		case telemetry.SpanCall:
			call = s
		case telemetry.SpanAttempt:
			attempts = append(attempts, s)
		}
	}
	require.NotNil(t, call)
	assert.Equal(t, parent.SpanContext().SpanID(), call.Parent().SpanID(), "under the caller's span")
	require.Len(t, attempts, 2, "the round-robin starts on down, then fails over to up")
	first := attribute.NewSet(attempts[0].Attributes()...)
	second := attribute.NewSet(attempts[1].Attributes()...)
	get := func(s attribute.Set, k attribute.Key) attribute.Value { v, _ := s.Value(k); return v }
	assert.Equal(t, "down", get(first, telemetry.KeyEndpoint).AsString())
	assert.Equal(t, "unavailable", get(first, telemetry.KeyOutcome).AsString())
	assert.Equal(t, "first", get(first, telemetry.KeyAttemptKind).AsString())
	assert.False(t, get(first, telemetry.KeyWon).AsBool())
	assert.Equal(t, "up", get(second, telemetry.KeyEndpoint).AsString())
	assert.Equal(t, "retry", get(second, telemetry.KeyAttemptKind).AsString())
	assert.EqualValues(t, 2, get(second, telemetry.KeyAttemptNumber).AsInt64())
	assert.True(t, get(second, telemetry.KeyWon).AsBool())
	assert.Equal(t, "primary", get(second, telemetry.KeyTier).AsString())
	for _, a := range attempts {
		assert.Equal(t, call.SpanContext().SpanID(), a.Parent().SpanID())
		assert.Equal(t, trace.SpanKindClient, a.SpanKind(), "an attempt is one physical request")
		assert.Equal(t, telemetry.Version, a.InstrumentationScope().Version)
		assert.Equal(t, telemetry.SchemaURL, a.InstrumentationScope().SchemaURL)
		as := attribute.NewSet(a.Attributes()...)
		assert.Equal(t, "POST", get(as, "http.request.method").AsString())
		assert.Equal(t, "127.0.0.1", get(as, "server.address").AsString())
		assert.NotZero(t, get(as, "server.port").AsInt64())
		assert.Regexp(t, `^http://127\.0\.0\.1:\d+/v1/chat/completions$`, get(as, "url.full").AsString())
	}
	assert.Equal(t, trace.SpanKindInternal, call.SpanKind(), "the call is logical; its attempts are the client spans")
	assert.EqualValues(t, 503, get(first, "http.response.status_code").AsInt64())
	assert.Equal(t, "unavailable", get(first, "error.type").AsString())
	assert.EqualValues(t, 200, get(second, "http.response.status_code").AsInt64())
	assert.False(t, second.HasValue("error.type"))

	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	names := map[string]bool{}
	var values []string
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, ScopeName, sm.Scope.Name)
		assert.Equal(t, telemetry.Version, sm.Scope.Version)
		for _, m := range sm.Metrics {
			names[m.Name] = true
			assert.True(t, strings.HasPrefix(m.Name, "sturdy.") || strings.HasPrefix(m.Name, "gen_ai.client."), m.Name)
			add := func(set attribute.Set) {
				for _, kv := range set.ToSlice() {
					if kv.Key != "server.address" { // the GenAI conventions' own
						values = append(values, kv.Value.Emit())
					}
				}
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			}
		}
	}
	for _, n := range []string{telemetry.MetricCalls, telemetry.MetricAttempts, telemetry.MetricCallDuration,
		telemetry.MetricCallTTFB, telemetry.MetricAttemptDuration, telemetry.MetricEndpointState, telemetry.MetricBudgetRefusals} {
		assert.True(t, names[n], "metric %s", n)
	}
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "server.address", "server.port", "url.full":
				// The endpoint's configured address, as the HTTP
				// conventions ask; url.full never has a query (above).
				continue
			}
			values = append(values, kv.Value.Emit())
		}
		values = append(values, s.Status().Description)
	}
	for _, v := range values {
		for _, secret := range []string{"secret", "caller-key", "hello there", "127.0.0.1", "http"} {
			assert.NotContains(t, v, secret, "no credential, prompt or URL in telemetry")
		}
	}
}

// A hedged call has two attempt spans under its call span: the hedge
// that won, and the first attempt, which it cancelled, marked so.
func TestHedgedCallShowsTheLoserCancelled(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	slow := startLLM(t, sturdytest.Config{Name: "slow", Latency: sturdytest.Latency{Fixed: 2 * time.Second}})
	fast := startLLM(t, sturdytest.Config{Name: "fast"})
	tr := newTr(t, WithTracerProvider(tp),
		WithBalancer(balancer.Config{Policy: balancer.RoundRobin}),
		WithTier(degrade.Tier{}, ep("slow", slow.URL(), ""), ep("fast", fast.URL(), "")),
		WithHedge(hedge.Config{Delay: 20 * time.Millisecond, BudgetRatio: -1}))

	var attempts []sdktrace.ReadOnlySpan
	for i := 0; i < 4 && len(attempts) < 2; i++ {
		sr.Reset()
		resp, err := tr.RoundTrip(chatReq(t, "m", false))
		require.NoError(t, err)
		readAll(t, resp)
		require.Eventually(t, func() bool { return len(spansNamed(sr, telemetry.SpanCall)) == 1 }, 5*time.Second, time.Millisecond)
		cs := attribute.NewSet(spansNamed(sr, telemetry.SpanCall)[0].Attributes()...)
		v, _ := cs.Value(telemetry.KeyAttempts)
		if v.AsInt64() == 2 {
			require.Eventually(t, func() bool { return len(spansNamed(sr, telemetry.SpanAttempt)) == 2 }, 5*time.Second, time.Millisecond)
			attempts = spansNamed(sr, telemetry.SpanAttempt)
		}
	}
	require.Len(t, attempts, 2, "one call went first to slow and was hedged on fast")
	call := spansNamed(sr, telemetry.SpanCall)[0]
	byEndpoint := map[string]attribute.Set{}
	for _, a := range attempts {
		assert.Equal(t, call.SpanContext().SpanID(), a.Parent().SpanID())
		assert.Equal(t, trace.SpanKindClient, a.SpanKind())
		s := attribute.NewSet(a.Attributes()...)
		v, _ := s.Value(telemetry.KeyEndpoint)
		byEndpoint[v.AsString()] = s
	}
	get := func(s attribute.Set, k attribute.Key) attribute.Value { v, _ := s.Value(k); return v }
	loser, winner := byEndpoint["slow"], byEndpoint["fast"]
	assert.Equal(t, "canceled", get(loser, telemetry.KeyOutcome).AsString())
	assert.False(t, get(loser, telemetry.KeyWon).AsBool())
	assert.False(t, loser.HasValue("error.type"), "a lost hedge is not the server's error")
	assert.Equal(t, "hedge", get(winner, telemetry.KeyAttemptKind).AsString())
	assert.Equal(t, "success", get(winner, telemetry.KeyOutcome).AsString())
	assert.True(t, get(winner, telemetry.KeyWon).AsBool())
	assert.EqualValues(t, 200, get(winner, "http.response.status_code").AsInt64())
}

func spansNamed(sr *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func TestWithoutAttemptHistogramsKeepsTheCounter(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	up := startLLM(t, sturdytest.Config{Name: "up"})
	tr := newTr(t, WithMeterProvider(mp), WithoutAttemptHistograms(), WithTier(degrade.Tier{}, ep("up", up.URL(), "")))
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	readAll(t, resp)
	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	names := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names[m.Name] = true
		}
	}
	assert.False(t, names[telemetry.MetricAttemptDuration])
	assert.True(t, names[telemetry.MetricAttempts])
	assert.True(t, names[telemetry.MetricCallDuration])
}
