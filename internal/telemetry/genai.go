package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// GenAI client metrics, as the OpenTelemetry GenAI semantic conventions
// name them (GenAIConventions). Their attributes are the conventions':
// gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
// gen_ai.response.model, gen_ai.token.type, server.address, server.port
// and error.type.
const (
	MetricGenAITokenUsage         = "gen_ai.client.token.usage"
	MetricGenAIOperationDuration  = "gen_ai.client.operation.duration"
	MetricGenAITimeToFirstChunk   = "gen_ai.client.operation.time_to_first_chunk"
	MetricGenAITimePerOutputChunk = "gen_ai.client.operation.time_per_output_chunk"
)

// GenAIConventions is the version of the GenAI conventions these metrics
// follow: the client metrics of semantic-conventions v1.41.0
// (docs/gen-ai/gen-ai-metrics.md), unchanged in the
// semantic-conventions-genai repository they moved to.
const GenAIConventions = "1.41.0"

// GenAI attribute keys.
const (
	KeyGenAIOperation     = attribute.Key("gen_ai.operation.name")
	KeyGenAIProvider      = attribute.Key("gen_ai.provider.name")
	KeyGenAIRequestModel  = attribute.Key("gen_ai.request.model")
	KeyGenAIResponseModel = attribute.Key("gen_ai.response.model")
	KeyGenAITokenType     = attribute.Key("gen_ai.token.type")
	keyErrorType          = attribute.Key("error.type")
)

// The conventions' bucket boundaries.
var (
	genAITokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	genAIDurationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
)

// OTEL_SEMCONV_STABILITY_OPT_IN: the conventions ask instrumentations
// that emitted GenAI conventions v1.36 or earlier to keep emitting that
// version by default and to switch to the latest only when the variable
// lists "gen_ai_latest_experimental". sturdy emitted no GenAI conventions
// before, so there is no older version to keep: it emits GenAIConventions
// whether or not the variable lists that value, and reads no other.

type genAIInst struct {
	tokens                  metric.Int64Histogram
	duration, ttfc, perChnk metric.Float64Histogram
}

func newGenAIInst(m metric.Meter) (*genAIInst, error) {
	g := &genAIInst{}
	var err, errs error
	g.tokens, err = m.Int64Histogram(MetricGenAITokenUsage, metric.WithUnit("{token}"),
		metric.WithDescription("Number of input and output tokens used."),
		metric.WithExplicitBucketBoundaries(genAITokenBuckets...))
	errs = errors.Join(errs, err)
	g.duration, err = m.Float64Histogram(MetricGenAIOperationDuration, metric.WithUnit("s"),
		metric.WithDescription("GenAI operation duration."),
		metric.WithExplicitBucketBoundaries(genAIDurationBuckets...))
	errs = errors.Join(errs, err)
	g.ttfc, err = m.Float64Histogram(MetricGenAITimeToFirstChunk, metric.WithUnit("s"),
		metric.WithDescription("Time to receive the first chunk, from when the client issues the generation request to when the first chunk is received in the response stream."),
		metric.WithExplicitBucketBoundaries(genAIDurationBuckets...))
	errs = errors.Join(errs, err)
	g.perChnk, err = m.Float64Histogram(MetricGenAITimePerOutputChunk, metric.WithUnit("s"),
		metric.WithDescription("Time per output chunk, recorded for each chunk received after the first one, from the end of the previous chunk to the end of the current one."),
		metric.WithExplicitBucketBoundaries(genAIDurationBuckets...))
	errs = errors.Join(errs, err)
	return g, errs
}

// GenAI describes one GenAI operation (a chat completion, say) for the
// GenAI metrics. Adapters fill it from the request, the endpoint and the
// response. Every value must be low-cardinality: models and providers
// are, operations are a fixed set, and server is the endpoint's.
type GenAI struct {
	Operation     string // gen_ai.operation.name: "chat", "text_completion", "embeddings"
	Provider      string // gen_ai.provider.name
	RequestModel  string // empty: unknown
	ResponseModel string // empty: unknown
	Server        []attribute.KeyValue
	ErrorType     string // empty: the operation succeeded
}

func (g *GenAI) attrs(withResponse bool) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 8)
	kv = append(kv, KeyGenAIOperation.String(g.Operation), KeyGenAIProvider.String(g.Provider))
	if g.RequestModel != "" {
		kv = append(kv, KeyGenAIRequestModel.String(g.RequestModel))
	}
	if withResponse && g.ResponseModel != "" {
		kv = append(kv, KeyGenAIResponseModel.String(g.ResponseModel))
	}
	kv = append(kv, g.Server...)
	if withResponse && g.ErrorType != "" {
		kv = append(kv, keyErrorType.String(g.ErrorType))
	}
	return kv
}

// GenAIEnabled reports whether GenAI metrics are recorded for a call with
// ctx: adapters skip the work of filling a GenAI (reading the request's
// model, scanning the response) when they are not, as with a no-op meter
// provider, or the global one before otel.SetMeterProvider.
func (t *Telemetry) GenAIEnabled(ctx context.Context) bool {
	return t.genai != nil && t.genai.duration.Enabled(ctx)
}

// GenAISets are the prepared attribute sets of one GenAI attribute
// combination (GenAI's values): adapters cache them, since the
// combinations are few, and building a set is most of a measurement's cost.
//
// Each is a one-element slice: a single option passed to Record's
// variadic parameter escapes into a slice allocated per measurement.
type GenAISets struct {
	all, chunk    []metric.RecordOption
	input, output []metric.RecordOption
	failed        bool
}

// Sets prepares the attribute sets of g.
func (t *Telemetry) Sets(g *GenAI) *GenAISets {
	kv := g.attrs(true)
	s := &GenAISets{failed: g.ErrorType != ""}
	s.all = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	s.chunk = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(g.attrs(false)...))}
	for _, u := range [2]struct {
		typ string
		opt *[]metric.RecordOption
	}{{"input", &s.input}, {"output", &s.output}} {
		// A fresh slice each time: NewSet sorts its argument in place.
		tk := make([]attribute.KeyValue, 0, len(kv)+1)
		tk = append(append(tk, kv...), KeyGenAITokenType.String(u.typ))
		*u.opt = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(tk...))}
	}
	return s
}

// RecordChunk records the time of one output chunk after the first, with
// the attributes of s known before the response (no response model).
// A quiet call (see StartCall) records nothing.
func (t *Telemetry) RecordChunk(c Call, s *GenAISets, d time.Duration) {
	if t.genai != nil && c.ctx != nil {
		t.genai.perChnk.Record(c.ctx, max(d, 0).Seconds(), s.chunk...)
	}
}

// RecordGenAI records a GenAI operation that ended now, with the sets of
// its attributes: its duration (from StartCall: the whole call, to the
// end of the body), its time to first chunk when firstChunk is not zero
// (a stream), and, unless it failed, its input and output token usage
// when known (not negative). A quiet call (see StartCall) records
// nothing.
func (t *Telemetry) RecordGenAI(c Call, s *GenAISets, firstChunk time.Time, input, output int64) {
	if t.genai == nil || s == nil || c.ctx == nil {
		return
	}
	d := max(time.Since(epoch)-c.start, 0)
	t.genai.duration.Record(c.ctx, d.Seconds(), s.all...)
	if !firstChunk.IsZero() {
		t.genai.ttfc.Record(c.ctx, max(firstChunk.Sub(epoch)-c.start, 0).Seconds(), s.all...)
	}
	if s.failed {
		return
	}
	if input >= 0 {
		t.genai.tokens.Record(c.ctx, input, s.input...)
	}
	if output >= 0 {
		t.genai.tokens.Record(c.ctx, output, s.output...)
	}
}
