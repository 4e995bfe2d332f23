package httpmw_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

// The recommended layering, and what it gives: every physical request has
// exactly one CLIENT span. With sturdy alone, its "sturdy.attempt" spans
// are the HTTP client spans (with the HTTP semantic-convention
// attributes). With otelhttp as sturdy's base transport (for its
// http.client.* metrics, say), otelhttp makes the client span of each
// attempt and sturdy's attempt spans turn INTERNAL above them. Either
// way "sturdy.call" is INTERNAL: it is the logical call, not a request.
// (otelhttp outside sturdy would add a CLIENT span for the logical call
// above the per-request ones: not recommended.)
func TestOneClientSpanPerRequestBesideOtelhttp(t *testing.T) {
	for _, tc := range []struct {
		name        string
		otelhttp    bool
		attemptKind trace.SpanKind
	}{
		{"sturdy alone", false, trace.SpanKindClient},
		{"otelhttp as the base", true, trace.SpanKindInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			down := startLLM(t, sturdytest.Config{Name: "down", Down: sturdytest.Down503})
			up := startLLM(t, sturdytest.Config{Name: "up"})

			plain := &http.Transport{}
			t.Cleanup(plain.CloseIdleConnections)
			var base http.RoundTripper = plain
			if tc.otelhttp {
				base = otelhttp.NewTransport(plain, otelhttp.WithTracerProvider(tp))
			}
			tr, err := httpmw.NewTransport(base, httpmw.WithTracerProvider(tp),
				httpmw.WithTier(degrade.Tier{}, endpoint(down, "k"), endpoint(up, "k")))
			require.NoError(t, err)
			defer tr.Close()

			ctx, root := tp.Tracer("test").Start(context.Background(), "root")
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm.invalid/v1/chat/completions",
				strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
			require.NoError(t, err)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			require.NoError(t, resp.Body.Close())
			root.End()

			spans := sr.Ended()
			byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
			for _, s := range spans {
				byID[s.SpanContext().SpanID()] = s
			}
			parentName := func(s sdktrace.ReadOnlySpan) string {
				if p, ok := byID[s.Parent().SpanID()]; ok {
					return p.Name()
				}
				return ""
			}
			var calls, attempts, clients int
			for _, s := range spans {
				if s.SpanKind() == trace.SpanKindClient {
					clients++
					if s.Name() != "sturdy.attempt" {
						assert.Equal(t, "sturdy.attempt", parentName(s), "otelhttp's span is under sturdy's attempt")
					}
				}
				switch s.Name() {
				case "sturdy.call":
					calls++
					assert.Equal(t, trace.SpanKindInternal, s.SpanKind())
					assert.Equal(t, "root", parentName(s))
				case "sturdy.attempt":
					attempts++
					assert.Equal(t, tc.attemptKind, s.SpanKind())
					assert.Equal(t, "sturdy.call", parentName(s))
				}
			}
			assert.Equal(t, 1, calls)
			assert.GreaterOrEqual(t, attempts, 1)
			assert.Equal(t, attempts, clients, "one CLIENT span per request, never two")
		})
	}
}
