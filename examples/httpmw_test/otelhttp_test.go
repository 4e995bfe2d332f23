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

// sturdy's Transport inside otelhttp (one HTTP client span per call) and
// otelhttp inside sturdy (one HTTP client span per attempt) both nest.
func TestWorksBesideOtelhttp(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	down := startLLM(t, sturdytest.Config{Name: "down", Down: sturdytest.Down503})
	up := startLLM(t, sturdytest.Config{Name: "up"})

	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	tr, err := httpmw.NewTransport(otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp)),
		httpmw.WithTracerProvider(tp),
		httpmw.WithTier(degrade.Tier{}, endpoint(down, "k"), endpoint(up, "k")))
	require.NoError(t, err)
	defer tr.Close()
	outer := otelhttp.NewTransport(tr, otelhttp.WithTracerProvider(tp))

	ctx, root := tp.Tracer("test").Start(context.Background(), "root")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm.invalid/v1/chat/completions",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: outer}).Do(req)
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
	var calls, attempts, httpUnderAttempt, httpUnderRoot int
	for _, s := range spans {
		switch {
		case s.Name() == "sturdy.call":
			calls++
			assert.Equal(t, trace.SpanKindInternal, s.SpanKind())
			assert.NotEqual(t, "root", parentName(s), "under otelhttp's outer client span")
		case s.Name() == "sturdy.attempt":
			attempts++
			assert.Equal(t, "sturdy.call", parentName(s))
		case s.SpanKind() == trace.SpanKindClient && parentName(s) == "sturdy.attempt":
			httpUnderAttempt++
		case s.SpanKind() == trace.SpanKindClient && parentName(s) == "root":
			httpUnderRoot++
		}
	}
	assert.Equal(t, 1, calls)
	assert.GreaterOrEqual(t, attempts, 1)
	assert.Equal(t, attempts, httpUnderAttempt, "one otelhttp span per attempt")
	assert.Equal(t, 1, httpUnderRoot, "one otelhttp span for the whole call")
}
