package httpmw_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

// The GenAI conventions' bucket boundaries.
var (
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
)

// openai-go's streaming and non-streaming chat completions through
// httpmw give the GenAI client metrics of the OpenTelemetry conventions,
// with the fake server's own token usage, and sturdy's call duration
// covers the whole stream while its time to first byte covers its start.
func TestGenAIMetricsFromOpenAIGo(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	up := startLLM(t, sturdytest.Config{Name: "up", ChunkDelay: 20 * time.Millisecond})
	down := startLLM(t, sturdytest.Config{Name: "down", Down: sturdytest.Down503})
	tr := newTransport(t, httpmw.WithTracerProvider(tp), httpmw.WithMeterProvider(mp),
		httpmw.WithTier(degrade.Tier{Name: "primary"}, endpoint(up, "k")))
	c := newOfficial(tr).(officialClient).c
	ctx := context.Background()

	res, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	require.NoError(t, err)
	require.Positive(t, res.Usage.PromptTokens)
	require.Positive(t, res.Usage.CompletionTokens)

	s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "m",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello again, at length")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var streamUsage openai.CompletionUsage
	chunks := 0
	for s.Next() {
		chunks++
		if u := s.Current().Usage; u.TotalTokens > 0 {
			streamUsage = u
		}
	}
	require.NoError(t, s.Err())
	require.NoError(t, s.Close())
	require.Positive(t, streamUsage.CompletionTokens)
	require.Greater(t, chunks, 2)

	// A call that fails: its duration carries error.type.
	failing := newTransport(t, httpmw.WithMeterProvider(mp),
		httpmw.WithTier(degrade.Tier{Name: "primary"}, endpoint(down, "k")))
	fc := newOfficial(failing).(officialClient).c
	_, err = fc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	require.Error(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(ctx, &rm))
	ms := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, httpmw.ScopeName, sm.Scope.Name)
		assert.NotEmpty(t, sm.Scope.Version)
		for _, m := range sm.Metrics {
			ms[m.Name] = m
		}
	}
	u, err := url.Parse(up.URL())
	require.NoError(t, err)
	port, _ := strconv.Atoi(u.Port())
	base := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.request.model", "m"),
		attribute.String("server.address", "127.0.0.1"),
		attribute.Int("server.port", port),
	}
	withResp := append(append([]attribute.KeyValue(nil), base...), attribute.String("gen_ai.response.model", "m"))
	set := func(kv ...attribute.KeyValue) attribute.Set { return attribute.NewSet(kv...) }
	plus := func(kv []attribute.KeyValue, more ...attribute.KeyValue) []attribute.KeyValue {
		return append(append([]attribute.KeyValue(nil), kv...), more...)
	}

	// gen_ai.client.token.usage: input and output, both calls, as the
	// server counted them.
	tok := ms["gen_ai.client.token.usage"]
	assert.Equal(t, "{token}", tok.Unit)
	th, ok := tok.Data.(metricdata.Histogram[int64])
	require.True(t, ok, "%T", tok.Data)
	points := map[attribute.Distinct]metricdata.HistogramDataPoint[int64]{}
	for _, p := range th.DataPoints {
		points[p.Attributes.Equivalent()] = p
		assert.Equal(t, tokenBuckets, p.Bounds)
	}
	for _, tc := range []struct {
		typ  string
		want int64
	}{
		{"input", res.Usage.PromptTokens + streamUsage.PromptTokens},
		{"output", res.Usage.CompletionTokens + streamUsage.CompletionTokens},
	} {
		want := set(plus(withResp, attribute.String("gen_ai.token.type", tc.typ))...)
		p, ok := points[want.Equivalent()]
		require.True(t, ok, "no %s token point in %v", tc.typ, th.DataPoints)
		assert.EqualValues(t, 2, p.Count, tc.typ)
		assert.Equal(t, tc.want, p.Sum, tc.typ)
	}

	// gen_ai.client.operation.duration: both calls, and the failed one
	// with error.type.
	dur := ms["gen_ai.client.operation.duration"]
	assert.Equal(t, "s", dur.Unit)
	dh := dur.Data.(metricdata.Histogram[float64])
	var okCount, failed uint64
	for _, p := range dh.DataPoints {
		assert.Equal(t, durationBuckets, p.Bounds)
		if et, has := p.Attributes.Value("error.type"); has {
			assert.Equal(t, "unavailable", et.AsString())
			failed += p.Count
			continue
		}
		assert.Equal(t, set(withResp...), p.Attributes)
		okCount += p.Count
	}
	assert.EqualValues(t, 2, okCount)
	assert.EqualValues(t, 1, failed)

	// Streams only: time to first chunk once, time per output chunk for
	// each chunk after the first (about ChunkDelay apart).
	ttfc := ms["gen_ai.client.operation.time_to_first_chunk"]
	assert.Equal(t, "s", ttfc.Unit)
	fh := ttfc.Data.(metricdata.Histogram[float64])
	require.Len(t, fh.DataPoints, 1)
	assert.EqualValues(t, 1, fh.DataPoints[0].Count)
	assert.Equal(t, set(withResp...), fh.DataPoints[0].Attributes)
	assert.Equal(t, durationBuckets, fh.DataPoints[0].Bounds)
	tpc := ms["gen_ai.client.operation.time_per_output_chunk"]
	assert.Equal(t, "s", tpc.Unit)
	ch := tpc.Data.(metricdata.Histogram[float64])
	require.Len(t, ch.DataPoints, 1)
	assert.Equal(t, set(base...), ch.DataPoints[0].Attributes)
	assert.GreaterOrEqual(t, ch.DataPoints[0].Count, uint64(chunks-1))
	assert.Greater(t, ch.DataPoints[0].Sum, 0.01)

	// sturdy's own: the stream's call duration is the whole stream, its
	// time to first byte only the start.
	callDur := ms["sturdy.call.duration"].Data.(metricdata.Histogram[float64])
	ttfb := ms["sturdy.call.time_to_first_byte"].Data.(metricdata.Histogram[float64])
	var callSum, ttfbSum float64
	for _, p := range callDur.DataPoints {
		callSum += p.Sum
	}
	for _, p := range ttfb.DataPoints {
		ttfbSum += p.Sum
	}
	assert.Greater(t, callSum-ttfbSum, float64(chunks-2)*0.02*0.8, "the body's chunks are in the call's duration")

	// Each call's span has its attempt as a CLIENT child with the HTTP
	// attributes.
	for _, sp := range sr.Ended() {
		if sp.Name() != "sturdy.attempt" {
			continue
		}
		assert.Equal(t, trace.SpanKindClient, sp.SpanKind())
		at := attribute.NewSet(sp.Attributes()...)
		v, _ := at.Value("http.request.method")
		assert.Equal(t, "POST", v.AsString())
		v, _ = at.Value("http.response.status_code")
		assert.EqualValues(t, 200, v.AsInt64())
	}
}
