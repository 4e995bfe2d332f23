package bench

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
)

// The telemetry overhead of issue 17: what sturdy's spans and metrics
// cost per call with the OpenTelemetry SDK installed, beside what
// otelhttp's cost over the same stub. Every SDK row gets its own
// providers of the same make: a TracerProvider that samples every span
// (AlwaysSample) and hands each ended span to an exporter that drops it,
// synchronously, and a MeterProvider read by a ManualReader (measurements
// are aggregated, as with any reader, and never collected here).
//
// sturdy-noop is sturdy with telemetry off (no-op providers); sturdy's
// telemetry cost is sturdy-sdk minus sturdy-noop, otelhttp's is
// otelhttp-sdk minus stub. cmd/all turns them into BENCHMARKS.md's table.

// discardExporter drops every span it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// sdkProviders returns a sampling SDK tracer provider and an SDK meter
// provider with a manual reader, shut down when b ends.
func sdkProviders(b *testing.B) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(discardExporter{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return tp, mp
}

// sturdyOne is httpmw over the stub with one tier of one endpoint and the
// defaults otherwise (balancer, health, failover): the telemetry rows
// compare what each call records, so the pool is kept small.
func sturdyOne(b *testing.B, opts ...httpmw.Option) *httpmw.Transport {
	tr, err := httpmw.NewTransport(stub{}, append([]httpmw.Option{
		httpmw.WithTier(degrade.Tier{Name: "primary"}, httpmw.URL("a", "http://127.0.0.1:8000", nil)),
	}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close() })
	return tr
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runHTTPCPU is runHTTP that also reports the process's CPU time per
// call as cpu-ns/op: on a shared machine, wall time per call counts the
// time other programs held the CPUs, CPU time does not (it does count the
// garbage collector's work on other threads, which allocations cause).
func runHTTPCPU(b *testing.B, rt http.RoundTripper) {
	start := cpuTime(b)
	runHTTP(b, rt)
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkTelemetry is the HTTP success path of BenchmarkHTTP (POST
// 1 KiB JSON to /v1/chat/completions, the stub's JSON answer read to EOF)
// with and without telemetry.
func BenchmarkTelemetry(b *testing.B) {
	b.Run("stub", func(b *testing.B) { runHTTPCPU(b, stub{}) })
	b.Run("otelhttp-sdk", func(b *testing.B) {
		tp, mp := sdkProviders(b)
		runHTTPCPU(b, otelhttp.NewTransport(stub{}, otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp)))
	})
	b.Run("sturdy-noop", func(b *testing.B) {
		runHTTPCPU(b, sturdyOne(b, httpmw.WithTracerProvider(tracenoop.NewTracerProvider()),
			httpmw.WithMeterProvider(metricnoop.NewMeterProvider())))
	})
	b.Run("sturdy-sdk", func(b *testing.B) {
		tp, mp := sdkProviders(b)
		runHTTPCPU(b, sturdyOne(b, httpmw.WithTracerProvider(tp), httpmw.WithMeterProvider(mp)))
	})
	b.Run("sturdy-sdk-metrics", func(b *testing.B) {
		_, mp := sdkProviders(b)
		runHTTPCPU(b, sturdyOne(b, httpmw.WithTracerProvider(tracenoop.NewTracerProvider()), httpmw.WithMeterProvider(mp)))
	})
	b.Run("sturdy-sdk-traces", func(b *testing.B) {
		tp, _ := sdkProviders(b)
		runHTTPCPU(b, sturdyOne(b, httpmw.WithTracerProvider(tp), httpmw.WithMeterProvider(metricnoop.NewMeterProvider())))
	})
}
