package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// serviceName names the program in its traces and in /metrics' target_info.
const serviceName = "sturdy-observability-example"

// telemetry is the program's OpenTelemetry setup: a tracer provider that
// prints a few traces to stdout, and a meter provider read by the
// Prometheus exporter, served on /metrics.
type telemetry struct {
	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
	server  *http.Server
	served  chan struct{}
	metrics string // the /metrics URL
}

// newTelemetry starts serving /metrics on listen and prints the spans of
// the first traces traces to out.
func newTelemetry(out io.Writer, listen string, traces int) (*telemetry, error) {
	spans, err := stdouttrace.New(stdouttrace.WithWriter(out))
	if err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(attribute.String("service.name", serviceName))
	t := &telemetry{
		// sturdy's spans follow the application span's sampling decision.
		tp: sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(&firstN{n: int64(traces)})),
			sdktrace.WithSyncer(spans),
			sdktrace.WithResource(res),
		),
	}

	// A registry of the program's own, so /metrics holds exactly what this
	// program reports. Names are translated the Prometheus way, pinned
	// rather than left to the exporter's default: "sturdy.calls" with unit
	// "{call}" becomes sturdy_calls_total, "sturdy.call.duration" in "s"
	// becomes sturdy_call_duration_seconds, attribute "sturdy.endpoint"
	// becomes label sturdy_endpoint.
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		_ = t.tp.Shutdown(context.Background())
		return nil, err
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))

	lis, err := net.Listen("tcp", listen)
	if err != nil {
		t.shutdown()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	t.metrics = "http://" + lis.Addr().String() + "/metrics"
	t.served = make(chan struct{})
	go func() {
		defer close(t.served)
		_ = t.server.Serve(lis) // http.ErrServerClosed after shutdown

	}()
	return t, nil
}

// shutdown stops serving /metrics and flushes the providers.
func (t *telemetry) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if t.server != nil {
		_ = t.server.Shutdown(ctx)
		<-t.served
	}
	_ = t.tp.Shutdown(ctx)
	if t.mp != nil {
		_ = t.mp.Shutdown(ctx)
	}
}

// firstN samples the first n root spans and drops the others: enough to
// show the shape of a trace without a wall of JSON. A real program samples
// by ratio (sdktrace.TraceIDRatioBased) or tail-samples in a collector.
type firstN struct {
	n     int64
	taken atomic.Int64
}

func (s *firstN) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	r := sdktrace.SamplingResult{Decision: sdktrace.Drop,
		Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	if s.taken.Add(1) <= s.n {
		r.Decision = sdktrace.RecordAndSample
	}
	return r
}

func (s *firstN) Description() string { return "FirstN" }

// syncWriter serializes writes from the span exporter, the workers and the
// reporter.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
