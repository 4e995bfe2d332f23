package telemetry

import (
	"context"
	"os"
	"os/exec"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/internal/attempt"
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
	a1 := attempt.Info{Endpoint: ep, Kind: sturdy.First, N: 1, Tier: 0}
	actx := h.Start(ctx, a1)
	h.End(actx, a1, sturdy.Outcome{Class: sturdy.Unavailable, Latency: time.Millisecond}, false)
	a2 := attempt.Info{Endpoint: &sturdy.Endpoint{Name: "b"}, Kind: sturdy.Hedge, N: 1, Tier: 1}
	actx = h.Start(ctx, a2)
	h.End(actx, a2, sturdy.Outcome{Class: sturdy.Success, Latency: time.Millisecond}, true)
	tel.OnFallback(0, 1, sturdy.FallbackFailed)
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

func TestNoopProvidersAllocateNothing(t *testing.T) {
	tel, err := New(Config{Tiers: []Tier{{Name: "t", Endpoints: []string{"a"}}}})
	require.NoError(t, err)
	defer tel.Close()
	ep := &sturdy.Endpoint{Name: "a"}
	h := tel.Hooks()
	setProbe(t, false)
	allocs := testing.AllocsPerRun(100, func() {
		ctx, call := tel.StartCall(context.Background())
		a := attempt.Info{Endpoint: ep, N: 1}
		actx := h.Start(ctx, a)
		h.End(actx, a, sturdy.Outcome{}, true)
		tel.RecordCall(call, 0, "a", sturdy.Success, 1)
		call.End()
	})
	assert.Zero(t, allocs, "no call span while the global tracer is a no-op")
}

func setProbe(t *testing.T, v bool) {
	prev := probeNow
	probeNow = func() bool { return v }
	t.Cleanup(func() { probeNow = prev })
}

// fakeGlobal stands in for otel's global TracerProvider: a no-op until
// it is given a delegate.
type fakeGlobal struct {
	embedded.TracerProvider
	delegate atomic.Pointer[sdktrace.TracerProvider]
}

func (g *fakeGlobal) Tracer(name string, _ ...trace.TracerOption) trace.Tracer {
	return &fakeTracer{g: g, name: name}
}

type fakeTracer struct {
	embedded.Tracer
	g    *fakeGlobal
	name string
}

func (f *fakeTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if d := f.g.delegate.Load(); d != nil {
		return d.Tracer(f.name).Start(ctx, name, opts...)
	}
	return noop.NewTracerProvider().Tracer("").Start(ctx, name, opts...)
}

func setGlobal(t *testing.T, tp trace.TracerProvider) {
	prev := globalTracerProvider
	globalTracerProvider = func() trace.TracerProvider { return tp }
	t.Cleanup(func() { globalTracerProvider = prev })
}

func callSpanMade(tel *Telemetry, ctx context.Context) bool {
	got, c := tel.StartCall(ctx)
	defer c.End()
	if c.Span() == nil {
		panic("Call.Span is nil")
	}
	return got != ctx
}

func TestCallSpanIsSkippedOnlyWhileItCouldOnlyBeANoop(t *testing.T) {
	sdk := sdktrace.NewTracerProvider()
	parent, sp := sdk.Tracer("caller").Start(context.Background(), "caller")
	defer sp.End()
	cases := []struct {
		name   string
		tp     trace.TracerProvider // nil: the global one
		ctx    context.Context
		probed bool // the first call makes its span, to see
		made   bool // later calls make theirs
	}{
		{"global no-op", nil, context.Background(), true, false},
		{"global no-op under a caller's span", nil, parent, true, true},
		{"noop provider", noop.NewTracerProvider(), context.Background(), false, false},
		{"noop provider under a caller's span", noop.NewTracerProvider(), parent, true, true},
		{"SDK", sdk, context.Background(), true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setGlobal(t, &fakeGlobal{})
			setProbe(t, false)
			tel, err := New(Config{TracerProvider: tc.tp})
			require.NoError(t, err)
			defer tel.Close()
			assert.Equal(t, tc.probed, callSpanMade(tel, tc.ctx), "first call")
			for range 3 {
				assert.Equal(t, tc.made, callSpanMade(tel, tc.ctx))
			}
		})
	}
}

// globalTelemetryAfterFirstProbe returns a Telemetry on a stand-in for
// otel's global provider, after the first call's probe found it a no-op.
func globalTelemetryAfterFirstProbe(t *testing.T) (*Telemetry, *fakeGlobal) {
	t.Helper()
	g := &fakeGlobal{}
	setGlobal(t, g)
	setProbe(t, false)
	tel, err := New(Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Close() })
	require.True(t, callSpanMade(tel, context.Background()), "the first call probes")
	return tel, g
}

func TestCallSpansResumeWhenTheGlobalProviderIsReplaced(t *testing.T) {
	tel, g := globalTelemetryAfterFirstProbe(t)
	require.False(t, callSpanMade(tel, context.Background()))

	sr := tracetest.NewSpanRecorder()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	g.delegate.Store(sdk) // what otel.SetTracerProvider does
	setGlobal(t, sdk)
	assert.True(t, callSpanMade(tel, context.Background()))
	assert.Len(t, sr.Ended(), 1)
}

func TestProbeFindsAGlobalTracerThatRecordsWithoutSetTracerProvider(t *testing.T) {
	tel, g := globalTelemetryAfterFirstProbe(t)
	// Auto-instrumentation makes the global tracer record, without
	// replacing the provider.
	sr := tracetest.NewSpanRecorder()
	g.delegate.Store(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)))
	require.False(t, callSpanMade(tel, context.Background()), "not seen until a probe")
	setProbe(t, true)
	require.True(t, callSpanMade(tel, context.Background()))
	setProbe(t, false)
	for range 3 {
		assert.True(t, callSpanMade(tel, context.Background()), "skipping is off for good")
	}
	assert.Len(t, sr.Ended(), 4)
}

func TestRecordFirstByteMeasuresUntilTheGivenTime(t *testing.T) {
	tel, _, rd, _ := newTest(t)
	_, call := tel.StartCall(context.Background())
	tel.RecordFirstByte(call, call.Start().Add(1500*time.Millisecond), 0)
	call.End()
	assert.InDelta(t, 1.5, histogramSum(t, rd, MetricCallTTFB), 1e-6)
}

// The call duration is the whole call: it ends when RecordCall runs (an
// HTTP body read to its end), not at the first byte. Inside a
// testing/synctest bubble time.Now has no monotonic reading and the
// bubble's own wall clock: times taken there still measure right.
func TestCallDurationIsTheWholeCallAndTTFBItsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel, _, rd, _ := newTest(t)
		_, call := tel.StartCall(context.Background())
		time.Sleep(1500 * time.Millisecond)
		tel.RecordFirstByte(call, time.Now(), 0)
		time.Sleep(2 * time.Second) // the body streams
		tel.RecordCall(call, 0, "a", sturdy.Success, 1)
		call.End()
		assert.InDelta(t, 1.5, histogramSum(t, rd, MetricCallTTFB), 1e-6)
		assert.InDelta(t, 3.5, callDurationSum(t, rd), 1e-6)
	})
}

// A call started with StartCallAt is measured from the time it was given
// (the adapter's clock reading at the call's start), not from the moment
// StartCallAt ran.
func TestStartCallAtMeasuresFromTheGivenTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel, _, rd, _ := newTest(t)
		start := time.Now()
		time.Sleep(time.Second)
		_, call := tel.StartCallAt(context.Background(), start)
		time.Sleep(500 * time.Millisecond)
		tel.RecordFirstByte(call, time.Now(), 0)
		time.Sleep(2 * time.Second)
		tel.RecordCall(call, 0, "a", sturdy.Success, 1)
		call.End()
		assert.InDelta(t, 1.5, histogramSum(t, rd, MetricCallTTFB), 1e-6)
		assert.InDelta(t, 3.5, callDurationSum(t, rd), 1e-6)
	})
}

func callDurationSum(t *testing.T, rd *sdkmetric.ManualReader) float64 {
	return histogramSum(t, rd, MetricCallDuration)
}

func histogramSum(t *testing.T, rd *sdkmetric.ManualReader, name string) float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	var sum float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, p := range h.DataPoints {
					sum += p.Sum
				}
			}
		}
	}
	return sum
}

func TestModuleVersion(t *testing.T) {
	info := func(bi *debug.BuildInfo) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	}
	dep := func(v string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "(devel)"},
			Deps: []*debug.Module{{Path: "golang.org/x/time", Version: "v0.9.0"}, {Path: modulePath, Version: v}}}
	}
	for _, tc := range []struct {
		name string
		read func() (*debug.BuildInfo, bool)
		want string
	}{
		{"a dependency at a tag", info(dep("v0.3.0")), "v0.3.0"},
		{"a dependency at a pseudo-version", info(dep("v0.0.0-20261206150000-abcdef012345")), "v0.0.0-20261206150000-abcdef012345"},
		{"sturdy's own repository", info(&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}), "devel"},
		{"no build information", info(nil), "devel"},
	} {
		if got := moduleVersion(tc.read); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if Version == "" {
		t.Fatal("Version is empty")
	}
}

// A call is quiet, its telemetry past StartCall a branch, only while
// neither its span nor any instrument could record.
func TestCallIsQuietOnlyWhileNothingRecords(t *testing.T) {
	sdkTP := func() (trace.TracerProvider, *tracetest.SpanRecorder) {
		sr := tracetest.NewSpanRecorder()
		return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)), sr
	}
	cases := []struct {
		name          string
		sdkTracer     bool
		sdkMeter      bool
		quiet         bool
		spans, counts int
	}{
		{"noop tracer and meter", false, false, true, 0, 0},
		{"noop tracer, SDK meter", false, true, false, 0, 1},
		{"SDK tracer, noop meter", true, false, false, 2, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{TracerProvider: noop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(),
				Tiers: []Tier{{Name: "t", Endpoints: []string{"a"}}}}
			var sr *tracetest.SpanRecorder
			if tc.sdkTracer {
				cfg.TracerProvider, sr = sdkTP()
			}
			rd := sdkmetric.NewManualReader()
			if tc.sdkMeter {
				cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
			}
			tel, err := New(cfg)
			require.NoError(t, err)
			defer tel.Close()
			ctx, call := tel.StartCall(context.Background())
			assert.Equal(t, tc.quiet, call.ctx == nil, "quiet")
			a := attempt.Info{Endpoint: &sturdy.Endpoint{Name: "a"}, Kind: sturdy.First, N: 1}
			h := tel.Hooks()
			h.End(h.Start(ctx, a), a, sturdy.Outcome{}, true)
			tel.RecordFirstByte(call, time.Time{}, 0)
			tel.RecordCall(call, 0, "a", sturdy.Success, 1)
			call.End()
			if sr != nil {
				assert.Len(t, sr.Ended(), tc.spans)
			}
			if tc.sdkMeter {
				var rm metricdata.ResourceMetrics
				require.NoError(t, rd.Collect(context.Background(), &rm))
				assert.EqualValues(t, tc.counts, sumOf(t, rm, MetricCalls))
				assert.EqualValues(t, tc.counts, sumOf(t, rm, MetricAttempts))
			}
		})
	}
}

// While the global tracer has not been seen recording, attempt spans are
// skipped without a look at the attempt's context, even under a caller's
// span (they would be no-ops with its span context); a call span that
// records turns them on before its attempts start.
func TestAttemptSpansFollowTheGlobalTracerUnderACallersSpan(t *testing.T) {
	tel, g := globalTelemetryAfterFirstProbe(t)
	caller := sdktrace.NewTracerProvider()
	parent, sp := caller.Tracer("caller").Start(context.Background(), "caller")
	defer sp.End()
	a := attempt.Info{Endpoint: &sturdy.Endpoint{Name: "a"}, Kind: sturdy.First, N: 1}
	h := tel.Hooks()

	ctx, call := tel.StartCall(parent)
	hctx := h.Start(ctx, a)
	assert.Equal(t, ctx, hctx, "no attempt span while the global tracer is a no-op")
	assert.Equal(t, sp.SpanContext(), trace.SpanContextFromContext(hctx), "the caller's span context goes on")
	h.End(hctx, a, sturdy.Outcome{}, true)
	call.End()

	// Auto-instrumentation makes the global tracer record.
	sr := tracetest.NewSpanRecorder()
	g.delegate.Store(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)))
	ctx, call = tel.StartCall(parent)
	hctx = h.Start(ctx, a)
	assert.NotEqual(t, ctx, hctx, "an attempt span")
	h.End(hctx, a, sturdy.Outcome{}, true)
	call.End()
	spans := sr.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, SpanAttempt, spans[0].Name())
	assert.Equal(t, spans[1].SpanContext().SpanID(), spans[0].Parent().SpanID())
}

// With otel's own global providers: calls are quiet until
// otel.SetTracerProvider and otel.SetMeterProvider, and then the next
// call records its spans and metrics. Setting the globals cannot be
// undone, so this runs in a process of its own.
func TestGlobalProvidersSetLaterTurnTelemetryOn(t *testing.T) {
	if os.Getenv("STURDY_TELEMETRY_GLOBALS") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.count", "1", "-test.v")
		cmd.Env = append(os.Environ(), "STURDY_TELEMETRY_GLOBALS=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: "+t.Name())
		return
	}
	setProbe(t, false)
	tel, err := New(Config{Tiers: []Tier{{Name: "t", Endpoints: []string{"a"}}}})
	require.NoError(t, err)
	defer tel.Close()
	a := attempt.Info{Endpoint: &sturdy.Endpoint{Name: "a"}, Kind: sturdy.First, N: 1}
	h := tel.Hooks()
	run := func() Call {
		ctx, call := tel.StartCall(context.Background())
		h.End(h.Start(ctx, a), a, sturdy.Outcome{}, true)
		tel.RecordFirstByte(call, time.Time{}, 0)
		tel.RecordCall(call, 0, "a", sturdy.Success, 1)
		call.End()
		return call
	}
	require.NotNil(t, run().span, "the first call probes the global tracer")
	require.Nil(t, run().ctx, "then calls are quiet")

	// Metrics first: the calls are no longer quiet, still without spans.
	rd := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd)))
	call := run()
	assert.NotNil(t, call.ctx, "not quiet")
	assert.Nil(t, call.span)
	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricCalls))
	assert.EqualValues(t, 1, sumOf(t, rm, MetricAttempts))
	for _, name := range []string{MetricCallDuration, MetricCallTTFB, MetricAttemptDuration} {
		assert.EqualValues(t, 1, histogramCount(t, rd, name), name)
	}

	sr := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)))
	run()
	spans := sr.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, SpanAttempt, spans[0].Name())
	assert.Equal(t, SpanCall, spans[1].Name())
	assert.Equal(t, spans[1].SpanContext().SpanID(), spans[0].Parent().SpanID())
	require.NoError(t, rd.Collect(context.Background(), &rm))
	assert.EqualValues(t, 2, sumOf(t, rm, MetricCalls))
}

func histogramCount(t *testing.T, rd *sdkmetric.ManualReader, name string) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, p := range h.DataPoints {
					n += p.Count
				}
			}
		}
	}
	return n
}
