package httpmw_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	mnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
)

// stub answers every request at once with a chat completion that has
// usage, so that the benchmarks below time the clients alone.
type stub struct{}

const stubAnswer = `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

func (stub) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(stubAnswer)), ContentLength: int64(len(stubAnswer)), Request: req,
	}, nil
}

func runOverhead(b *testing.B, rt http.RoundTripper) {
	payload := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 1024-55) + `"}]}`)
	req, err := http.NewRequest(http.MethodPost, "http://llm.local/v1/chat/completions", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	buf := make([]byte, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := req.Clone(req.Context())
		r.Body, _ = req.GetBody()
		resp, err := rt.RoundTrip(r)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		_ = resp.Body.Close()
	}
}

// sdkProviders are the OpenTelemetry SDK's, sampling every span (with no
// exporter: the cost measured is the instrumentation's and the SDK's, not
// an exporter's) and keeping metrics for a reader.
func sdkProviders(b *testing.B) (trace.TracerProvider, metric.MeterProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	return tp, mp
}

func sturdyOver(b *testing.B, base http.RoundTripper, tp trace.TracerProvider, mp metric.MeterProvider) http.RoundTripper {
	tr, err := httpmw.NewTransport(base, httpmw.WithTracerProvider(tp), httpmw.WithMeterProvider(mp),
		httpmw.WithTier(degrade.Tier{Name: "primary"}, httpmw.URL("a", "http://127.0.0.1:1", nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close() })
	return tr
}

// BenchmarkTelemetryOverhead sets sturdy's per-call telemetry with the
// SDK installed beside otelhttp's own, over a stub that answers at once:
//
//	stub                    the stub alone
//	otelhttp/noop, /sdk     otelhttp around the stub, without and with the SDK
//	sturdy/noop, /sdk       sturdy around the stub, without and with the SDK
//
// sdk minus noop is each one's telemetry cost per call (sturdy's: a call
// span, an attempt span with HTTP attributes, sturdy.* and gen_ai.*
// metrics; otelhttp's: one client span and its http.client.* metrics).
func BenchmarkTelemetryOverhead(b *testing.B) {
	b.Run("stub", func(b *testing.B) { runOverhead(b, stub{}) })
	b.Run("otelhttp/noop", func(b *testing.B) {
		runOverhead(b, otelhttp.NewTransport(stub{}, otelhttp.WithTracerProvider(tnoop.NewTracerProvider()),
			otelhttp.WithMeterProvider(mnoop.NewMeterProvider())))
	})
	b.Run("otelhttp/sdk", func(b *testing.B) {
		tp, mp := sdkProviders(b)
		runOverhead(b, otelhttp.NewTransport(stub{}, otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp)))
	})
	b.Run("sturdy/noop", func(b *testing.B) {
		runOverhead(b, sturdyOver(b, stub{}, tnoop.NewTracerProvider(), mnoop.NewMeterProvider()))
	})
	b.Run("sturdy/sdk", func(b *testing.B) {
		tp, mp := sdkProviders(b)
		runOverhead(b, sturdyOver(b, stub{}, tp, mp))
	})
}
