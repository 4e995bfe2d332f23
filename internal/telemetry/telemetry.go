package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/policy"
)

// Version is sturdy's version, the instrumentation scope's version of
// every tracer and meter sturdy makes: the module version the program was
// built with (a release tag such as "v0.3.0", or the pseudo-version go get
// recorded), read from the build information, so that it never goes
// stale; "devel" in a build of sturdy's own repository or without module
// information.
var Version = moduleVersion(debug.ReadBuildInfo)

const modulePath = "github.com/sturdyai/sturdy"

func moduleVersion(read func() (*debug.BuildInfo, bool)) string {
	bi, ok := read()
	if !ok {
		return "devel"
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			if d.Replace != nil && d.Replace.Version != "" {
				return d.Replace.Version
			}
			if d.Version != "" {
				return d.Version
			}
		}
	}
	if bi.Main.Path == modulePath && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// SchemaURL is the OpenTelemetry schema of the semantic-convention
// attributes sturdy puts on spans (HTTP, RPC, server.*, error.type): the
// same version otelhttp v0.72 pins.
const SchemaURL = semconv.SchemaURL

// Span names.
const (
	SpanCall    = "sturdy.call"
	SpanAttempt = "sturdy.attempt"
)

// Attribute keys. Values are endpoint and tier names (configured, so
// bounded), class names, kinds and reasons: all low-cardinality.
const (
	KeyEndpoint       = attribute.Key("sturdy.endpoint")
	KeyTier           = attribute.Key("sturdy.tier")
	KeyAttemptNumber  = attribute.Key("sturdy.attempt.number")
	KeyAttemptKind    = attribute.Key("sturdy.attempt.kind")
	KeyOutcome        = attribute.Key("sturdy.outcome")
	KeyWon            = attribute.Key("sturdy.attempt.won")
	KeyAttempts       = attribute.Key("sturdy.attempts")
	KeyFallbackFrom   = attribute.Key("sturdy.fallback.from")
	KeyFallbackTo     = attribute.Key("sturdy.fallback.to")
	KeyFallbackReason = attribute.Key("sturdy.fallback.reason")
	KeyEjectionReason = attribute.Key("sturdy.ejection.reason")
	// KeyState is not "sturdy.endpoint.state": that is the gauge's name,
	// and in Prometheus a label must not repeat its metric's name.
	KeyState  = attribute.Key("sturdy.health.state")
	KeyBudget = attribute.Key("sturdy.budget")
)

// Metric names.
const (
	MetricCalls           = "sturdy.calls"
	MetricAttempts        = "sturdy.attempts"
	MetricHedges          = "sturdy.hedges"
	MetricFallbacks       = "sturdy.fallbacks"
	MetricEjections       = "sturdy.ejections"
	MetricEndpointState   = "sturdy.endpoint.state"
	MetricCallDuration    = "sturdy.call.duration"
	MetricCallTTFB        = "sturdy.call.time_to_first_byte"
	MetricAttemptDuration = "sturdy.attempt.duration"
	MetricBudgetRefusals  = "sturdy.budget.refusals"
)

// NoTier is the tier attribute of a call that no tier served.
const NoTier = "none"

// Tier describes one tier of the adapter's chain, so that New can build
// its attribute sets and read its policies' counters.
type Tier struct {
	// Name is the tier's name (degrade.Tier.Name after defaults).
	Name string
	// Endpoints are the names of the tier's endpoints.
	Endpoints []string
	// Retry, if not nil, is the tier's failover policy; its budget
	// refusals are reported.
	Retry *policy.Retry
	// Hedge, if not nil, is the tier's hedge policy; its budget refusals
	// are reported.
	Hedge *policy.Hedge
}

// Config configures a Telemetry.
type Config struct {
	// Scope is the instrumentation scope name, e.g.
	// "github.com/sturdyai/sturdy/httpmw". Empty means
	// "github.com/sturdyai/sturdy".
	Scope string
	// TracerProvider makes the tracer. Nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the meter. Nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Tiers are the chain's tiers, primary first, index for index as the
	// degrade.Chain has them.
	Tiers []Tier
	// Health, if not nil, is read for the endpoint-state gauge.
	Health *health.Tracker
	// NoAttemptHistograms, if true, leaves out the per-attempt duration
	// histogram (its series grow with endpoints × outcome classes ×
	// buckets); the attempt counter stays.
	NoAttemptHistograms bool
	// NoGenAI, if true, leaves out the GenAI client metrics (genai.go).
	NoGenAI bool
	// AttemptSpanKind is the kind of "sturdy.attempt" spans. Zero means
	// trace.SpanKindClient: each attempt is one physical request. An
	// adapter whose base transport makes its own client spans (otelhttp)
	// passes trace.SpanKindInternal so that each request has one.
	AttemptSpanKind trace.SpanKind
}

const numKinds = 3 // first, retry, hedge

const numClasses = int(sturdy.Canceled) + 1

type endpointInst struct {
	name     string
	attrName attribute.KeyValue
	add      [numKinds][numClasses][]metric.AddOption
	rec      [numClasses][]metric.RecordOption // attempt durations: no kind
	hedge    []metric.AddOption
	states   [3]metric.ObserveOption // healthy, ejected, probation
	// The span attributes of the common case, built once: a span's
	// SetAttributes keeps its own copy, so a shared slice is safe, and a
	// slice built per call escapes to the heap (BenchmarkTelemetry in
	// the bench module).
	firstSpan []attribute.KeyValue // the attempt span of a call's first attempt
	callOK    []attribute.KeyValue // the call span of a call its first attempt served
}

type tierInst struct {
	name     string
	attrName attribute.KeyValue
	eps      map[string]*endpointInst
	epList   []*endpointInst
	add      [numClasses][]metric.AddOption
	rec      [numClasses][]metric.RecordOption
	ttfb     []metric.RecordOption
	retry    *policy.Retry
	hedge    *policy.Hedge
	budgetR  metric.ObserveOption
	budgetH  metric.ObserveOption
}

// Telemetry records spans and metrics for one adapter instance. It is safe
// for concurrent use. Build it with New; Close it to stop its
// observable callbacks.
type Telemetry struct {
	tracer    trace.Tracer
	startOpts []trace.SpanStartOption
	attOpts   []trace.SpanStartOption
	// Call spans that could only be no-ops are skipped; see StartCall.
	noopTP   bool                 // the provider is trace/noop's: it never records
	globalTP trace.TracerProvider // the global provider New used, if it did
	live     atomic.Bool          // a call span recorded, or globalTP was replaced: skip no more
	probed   atomic.Bool          // a probed call span was a no-op
	// Calls are quiet (see StartCall) only while no instrument can
	// record: the meter provider is metric/noop's, or otel's global one
	// before otel.SetMeterProvider replaces it.
	noopMP   bool                 // the provider is metric/noop's
	globalMP metric.MeterProvider // otel's delegating global provider New used, if it did
	metersOn atomic.Bool          // globalMP was replaced
	tiers    []*tierInst
	none     *tierInst // for calls no tier served
	health   *health.Tracker

	calls, attempts, hedges, fallbacks, ejections metric.Int64Counter
	callDur, callTTFB, attemptDur                 metric.Float64Histogram
	state                                         metric.Int64ObservableGauge
	refusals                                      metric.Int64ObservableCounter
	reg                                           metric.Registration

	genai *genAIInst // nil: GenAI metrics off

	hooks attempt.Hooks
}

// durationBuckets suit inference calls: from a few milliseconds to minutes.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// New returns a Telemetry for the given tiers. It fails only when the
// meter refuses an instrument.
func New(cfg Config) (*Telemetry, error) {
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	global := globalTracerProvider()
	if tp == nil {
		tp = global
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	scope := cfg.Scope
	if scope == "" {
		scope = "github.com/sturdyai/sturdy"
	}
	kind := cfg.AttemptSpanKind
	if kind == trace.SpanKindUnspecified {
		kind = trace.SpanKindClient
	}
	t := &Telemetry{
		tracer:    tp.Tracer(scope, trace.WithInstrumentationVersion(Version), trace.WithSchemaURL(SchemaURL)),
		startOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)},
		attOpts:   []trace.SpanStartOption{trace.WithSpanKind(kind)},
		health:    cfg.Health,
	}
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		t.noopTP = true
	default:
		// Compared by identity on the hot path: only a pointer is both
		// cheap and safe to compare (otel's default global provider is
		// one).
		if tp == global && reflect.TypeOf(tp).Kind() == reflect.Pointer {
			t.globalTP = tp
		}
	}
	switch mp.(type) {
	case metricnoop.MeterProvider, *metricnoop.MeterProvider:
		t.noopMP = true
	default:
		if isDelegatingGlobal(mp) {
			t.globalMP = mp
		}
	}
	m := mp.Meter(scope, metric.WithInstrumentationVersion(Version), metric.WithSchemaURL(SchemaURL))
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{"+unitOf(name)+"}"))
		errs = append(errs, err)
		return c
	}
	t.calls = counter(MetricCalls, "Calls through sturdy, by serving tier and outcome class.")
	t.attempts = counter(MetricAttempts, "Attempts, by endpoint, tier, kind (first, retry, hedge) and outcome class.")
	t.hedges = counter(MetricHedges, "Hedged attempts started, by endpoint and tier.")
	t.fallbacks = counter(MetricFallbacks, "Calls leaving a tier for a later one, by from, to and reason.")
	t.ejections = counter(MetricEjections, "Endpoints ejected by health, by endpoint and reason.")
	var err error
	t.callDur, err = m.Float64Histogram(MetricCallDuration, metric.WithUnit("s"),
		metric.WithDescription("Time from the start of a call until its whole result is delivered (an HTTP body read to its end or closed, a stream finished) or it fails, by tier and outcome class."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	t.callTTFB, err = m.Float64Histogram(MetricCallTTFB, metric.WithUnit("s"),
		metric.WithDescription("Time from the start of a served call until its first response byte (for a stream, its first event), by serving tier."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	if !cfg.NoAttemptHistograms {
		t.attemptDur, err = m.Float64Histogram(MetricAttemptDuration, metric.WithUnit("s"),
			metric.WithDescription("Time from the start of an attempt until its outcome (first body byte), by endpoint, tier and outcome class."),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
	}
	t.state, err = m.Int64ObservableGauge(MetricEndpointState,
		metric.WithDescription("1 for the endpoint's current health state (healthy, ejected, probation), 0 for the others."))
	errs = append(errs, err)
	t.refusals, err = m.Int64ObservableCounter(MetricBudgetRefusals, metric.WithUnit("{refusal}"),
		metric.WithDescription("Retries and hedges refused by their budget, by tier and budget (retry, hedge)."))
	errs = append(errs, err)
	if !cfg.NoGenAI {
		t.genai, err = newGenAIInst(m)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}

	for _, ct := range cfg.Tiers {
		t.tiers = append(t.tiers, newTierInst(ct))
	}
	t.none = newTierInst(Tier{Name: NoTier})

	t.reg, err = m.RegisterCallback(t.observe, t.state, t.refusals)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	t.hooks = attempt.Hooks{Start: t.attemptStart, End: t.attemptEnd}
	return t, nil
}

// globalMeterProvider is otel.GetMeterProvider (a test seam).
var globalMeterProvider = otel.GetMeterProvider

// isDelegatingGlobal reports whether mp is otel's global MeterProvider
// before otel.SetMeterProvider: a pointer of otel's internal/global
// package (the delegating provider whose instruments record nothing until
// it is given a delegate), and the one otel.GetMeterProvider returns now.
func isDelegatingGlobal(mp metric.MeterProvider) bool {
	if mp != globalMeterProvider() {
		return false
	}
	rt := reflect.TypeOf(mp)
	return rt.Kind() == reflect.Pointer && rt.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
}

func unitOf(name string) string {
	switch name {
	case MetricCalls:
		return "call"
	case MetricHedges:
		return "hedge"
	case MetricFallbacks:
		return "fallback"
	case MetricEjections:
		return "ejection"
	}
	return "attempt"
}

var kinds = [numKinds]sturdy.AttemptKind{sturdy.First, sturdy.Retry, sturdy.Hedge}

var states = [3]health.State{health.Healthy, health.Ejected, health.Probation}

func newTierInst(ct Tier) *tierInst {
	ti := &tierInst{
		name:     ct.Name,
		attrName: KeyTier.String(ct.Name),
		eps:      make(map[string]*endpointInst, len(ct.Endpoints)),
		retry:    ct.Retry,
		hedge:    ct.Hedge,
	}
	for c := range numClasses {
		o := metric.WithAttributeSet(attribute.NewSet(ti.attrName, KeyOutcome.String(sturdy.Class(c).String())))
		ti.add[c] = []metric.AddOption{o}
		ti.rec[c] = []metric.RecordOption{o}
	}
	ti.ttfb = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(ti.attrName))}
	ti.budgetR = metric.WithAttributeSet(attribute.NewSet(ti.attrName, KeyBudget.String("retry")))
	ti.budgetH = metric.WithAttributeSet(attribute.NewSet(ti.attrName, KeyBudget.String("hedge")))
	for _, name := range ct.Endpoints {
		if _, dup := ti.eps[name]; dup {
			continue
		}
		ei := newEndpointInst(ti.attrName, name)
		ti.eps[name] = ei
		ti.epList = append(ti.epList, ei)
	}
	return ti
}

func newEndpointInst(tier attribute.KeyValue, name string) *endpointInst {
	ei := &endpointInst{name: name, attrName: KeyEndpoint.String(name)}
	for k := range numKinds {
		for c := range numClasses {
			o := metric.WithAttributeSet(attribute.NewSet(ei.attrName, tier,
				KeyAttemptKind.String(kinds[k].String()), KeyOutcome.String(sturdy.Class(c).String())))
			ei.add[k][c] = []metric.AddOption{o}
		}
	}
	for c := range numClasses {
		o := metric.WithAttributeSet(attribute.NewSet(ei.attrName, tier, KeyOutcome.String(sturdy.Class(c).String())))
		ei.rec[c] = []metric.RecordOption{o}
	}
	ei.hedge = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(ei.attrName, tier))}
	ei.firstSpan = []attribute.KeyValue{ei.attrName, tier, KeyAttemptNumber.Int(1), KeyAttemptKind.String(sturdy.First.String())}
	ei.callOK = []attribute.KeyValue{tier, ei.attrName, KeyOutcome.String(sturdy.Success.String()), KeyAttempts.Int(1)}
	for i, s := range states {
		ei.states[i] = metric.WithAttributeSet(attribute.NewSet(ei.attrName, tier, KeyState.String(s.String())))
	}
	return ei
}

// Close unregisters the observable instruments' callback. The Telemetry
// may still be used; it just stops reporting endpoint state and budgets.
func (t *Telemetry) Close() error {
	if t == nil || t.reg == nil {
		return nil
	}
	return t.reg.Unregister()
}

func (t *Telemetry) observe(_ context.Context, o metric.Observer) error {
	for _, ti := range t.tiers {
		if t.health != nil {
			for _, ei := range ti.epList {
				cur := t.health.State(ei.name)
				for i, s := range states {
					var v int64
					if s == cur {
						v = 1
					}
					o.ObserveInt64(t.state, v, ei.states[i])
				}
			}
		}
		if ti.retry != nil {
			o.ObserveInt64(t.refusals, int64(ti.retry.Stats().BudgetRefusals), ti.budgetR)
		}
		if ti.hedge != nil {
			o.ObserveInt64(t.refusals, int64(ti.hedge.Stats().BudgetRefusals), ti.budgetH)
		}
	}
	return nil
}

func (t *Telemetry) tier(i int) *tierInst {
	if i >= 0 && i < len(t.tiers) {
		return t.tiers[i]
	}
	return t.none
}

func (t *Telemetry) endpoint(tier int, name string) *endpointInst {
	ti := t.tier(tier)
	if ei, ok := ti.eps[name]; ok {
		return ei
	}
	// An endpoint added after New (balancer.Update): build its sets now.
	// This allocates, but only for endpoints New was not told about.
	return newEndpointInst(ti.attrName, name)
}

// Call is one call's span and start time. It is a small value; copy it
// freely, and call End once. The zero Call is a quiet one: it records
// nothing.
type Call struct {
	// ctx is the call's context, nil for a quiet call (see StartCall):
	// then RecordFirstByte, RecordCall, the GenAI records and End are one
	// branch each, inlined where the adapter calls them.
	ctx   context.Context
	span  trace.Span    // nil: none was made (see StartCall)
	start time.Duration // since epoch
}

// epoch anchors call start times on the monotonic clock: time.Since(epoch)
// reads one clock where time.Now reads two.
var epoch = time.Now()

// noSpan is what Call.Span returns for a call without a span.
var noSpan trace.Span = noop.Span{}

// Span returns the call's span: a non-recording one if StartCall made none.
// It is never nil.
func (c Call) Span() trace.Span {
	if c.span == nil {
		return noSpan
	}
	return c.span
}

// Quiet reports whether the call records nothing (see StartCall): an
// adapter can then skip what only its telemetry would read.
func (c Call) Quiet() bool { return c.ctx == nil }

// Start returns when the call started, on the monotonic clock.
func (c Call) Start() time.Time { return epoch.Add(c.start) }

// End ends the call's span. For a served call, adapters call it when the
// result is released (an HTTP response body closed, a stream finished).
func (c Call) End() {
	if c.span != nil {
		c.span.End()
	}
}

// Test seams.
var (
	globalTracerProvider = otel.GetTracerProvider
	probeNow             = func() bool { return rand.Uint32()%probeEvery == 0 }
)

// probeEvery is how often, in calls, a call span that would be skipped is
// made anyway, to see whether the global tracer records after all.
const probeEvery = 1024

// StartCall starts the "sturdy.call" span under ctx's span. The returned
// context carries it; pass that context to chain.Run so that attempt
// spans become its children.
//
// When ctx carries no valid span context and the tracer can only make
// no-op spans (a trace/noop provider, or the global provider while
// otel.SetTracerProvider has not replaced it), StartCall makes no span
// and returns ctx as is: the span would be non-recording with an invalid
// context, which no tracer, propagator or exporter tells from none, and
// attempt spans under an invalid context are skipped anyway. That saves
// its allocations on every call of a program that does not trace. Once
// otel.SetTracerProvider replaces the global provider, spans are made
// again. Since the global tracer can record without that (OpenTelemetry
// Go auto-instrumentation attaches to it), the first such call and one in
// probeEvery make their span anyway, and one that records, or has a valid
// context, ends the skipping for good; so does a call span under a
// caller's span that is one of its own (it records, or has its own ID).
//
// While spans are skipped, attempt spans are too: the attempt hooks
// decide that without looking into the attempt's context. An attempt span
// under a caller's span would be a no-op with the caller's span context,
// which nothing tells from none either.
//
// A call without a span whose meter provider cannot record either (a
// metric/noop provider, or the global one while otel.SetMeterProvider
// has not replaced it) is quiet: the rest of its telemetry records
// nothing and costs a branch. Providers installed during a call take
// effect from the next one.
func (t *Telemetry) StartCall(ctx context.Context) (context.Context, Call) {
	return t.startCall(ctx, time.Time{})
}

// StartCallAt is StartCall for a call that started at now: an adapter
// that reads the clock at the call's start anyway (to start its first
// attempt then, chain.Call.Start) shares that reading, which saves one
// (BenchmarkRoundTripOverhead in httpmw). A zero now means now.
func (t *Telemetry) StartCallAt(ctx context.Context, now time.Time) (context.Context, Call) {
	return t.startCall(ctx, now)
}

// startCall takes the time, not the duration since epoch, so that
// StartCallAt is inlined: a wrapper that returns a Call from a call
// costs a copy through memory that stalls (BenchmarkCall).
func (t *Telemetry) startCall(ctx context.Context, now time.Time) (context.Context, Call) {
	var start time.Duration
	if now.IsZero() {
		start = time.Since(epoch)
	} else {
		start = now.Sub(epoch)
	}
	if t.spansOff() && !trace.SpanContextFromContext(ctx).IsValid() && t.skipSpan() {
		if t.metersOff() {
			return ctx, Call{start: start} // quiet
		}
		return ctx, Call{ctx: ctx, start: start}
	}
	return t.startSpan(ctx, start)
}

// startSpan is startCall for a call that makes its span.
func (t *Telemetry) startSpan(ctx context.Context, start time.Duration) (context.Context, Call) {
	if !t.spansOff() {
		ctx, span := t.tracer.Start(ctx, SpanCall, t.startOpts...)
		return ctx, Call{ctx: ctx, span: span, start: start}
	}
	parent := trace.SpanContextFromContext(ctx)
	ctx, span := t.tracer.Start(ctx, SpanCall, t.startOpts...)
	switch {
	case !parent.IsValid(): // a probe (see skipSpan)
		if span.IsRecording() || span.SpanContext().IsValid() {
			t.live.Store(true)
		} else if !t.probed.Load() {
			t.probed.Store(true)
		}
	case !t.noopTP && (span.IsRecording() || span.SpanContext().SpanID() != parent.SpanID()):
		// Under a caller's span, a span of its own: the global tracer
		// was replaced, or records after all.
		t.live.Store(true)
	}
	return ctx, Call{ctx: ctx, span: span, start: start}
}

// SpansOff reports whether sturdy makes no spans now (see StartCall): an
// adapter then has no attempt span to annotate, and need not look for
// one.
func (t *Telemetry) SpansOff() bool { return t.spansOff() }

// spansOff reports whether every span the tracer makes now is a no-op (as
// far as is known: see StartCall), so that call spans without a parent
// and attempt spans are skipped. It turns false for good, never back.
func (t *Telemetry) spansOff() bool {
	return t.noopTP || (t.globalTP != nil && !t.live.Load())
}

// skipSpan decides, for a call without a span context while spansOff,
// whether the call span can be left out; see StartCall.
func (t *Telemetry) skipSpan() bool {
	if t.noopTP {
		return true
	}
	if globalTracerProvider() != t.globalTP {
		// Replaced: the global tracer New took now delegates to a real one.
		t.live.Store(true)
		return false
	}
	return t.probed.Load() && !probeNow()
}

// metersOff reports whether no instrument can record now: the meter
// provider is a no-op, or otel's global one not yet replaced.
func (t *Telemetry) metersOff() bool {
	if t.noopMP {
		return true
	}
	if t.globalMP == nil || t.metersOn.Load() {
		return false
	}
	if globalMeterProvider() != t.globalMP {
		t.metersOn.Store(true)
		return false
	}
	return true
}

// RecordCall records the call's result, now: the calls counter and the
// call duration (from StartCall until now, the whole call) by tier and
// class, and the tier, endpoint, outcome and attempt count on the span.
// Adapters call it once the result is delivered (a served HTTP body read
// to its end or closed, a stream finished) or the call failed. tier is
// the serving (or deciding) tier's index, or -1; endpoint may be empty.
// It does not end the span.
func (t *Telemetry) RecordCall(c Call, tier int, endpoint string, class sturdy.Class, attempts int) {
	if c.ctx != nil {
		t.recordCall(c, tier, endpoint, class, attempts)
	}
}

func (t *Telemetry) recordCall(c Call, tier int, endpoint string, class sturdy.Class, attempts int) {
	ti := t.tier(tier)
	ci := int(class)
	if ci >= numClasses {
		ci = int(sturdy.Fatal)
	}
	t.calls.Add(c.ctx, 1, ti.add[ci]...)
	// A histogram that records nothing (no MeterProvider installed) costs
	// no clock read.
	if t.callDur.Enabled(c.ctx) {
		d := max(time.Since(epoch)-c.start, 0)
		t.callDur.Record(c.ctx, d.Seconds(), ti.rec[ci]...)
	}
	if c.span != nil && c.span.IsRecording() {
		if ei := ti.eps[endpoint]; ei != nil && class == sturdy.Success && attempts == 1 {
			c.span.SetAttributes(ei.callOK...)
			return
		}
		c.span.SetAttributes(
			ti.attrName,
			KeyEndpoint.String(endpoint),
			KeyOutcome.String(class.String()),
			KeyAttempts.Int(attempts),
		)
		if class != sturdy.Success {
			c.span.SetStatus(codes.Error, class.String())
		}
	}
}

// RecordFirstByte records the time to first byte of a call that tier
// served: from StartCall until at, the winning attempt's
// sturdy.Outcome.End (which saves a clock read); a zero at means now.
func (t *Telemetry) RecordFirstByte(c Call, at time.Time, tier int) {
	if c.ctx != nil {
		t.recordFirstByte(c, at, tier)
	}
}

func (t *Telemetry) recordFirstByte(c Call, at time.Time, tier int) {
	if !t.callTTFB.Enabled(c.ctx) {
		return
	}
	var d time.Duration
	if at.IsZero() {
		d = time.Since(epoch) - c.start
	} else {
		d = at.Sub(epoch) - c.start
	}
	t.callTTFB.Record(c.ctx, max(d, 0).Seconds(), t.tier(tier).ttfb...)
}

// Hooks returns the degrade hooks that start and end "sturdy.attempt"
// spans and record the attempt metrics. Put it in degrade.Config.Hooks.
// Start hooks must receive the context that StartCall returned (through
// chain.Run) for the spans to nest.
func (t *Telemetry) Hooks() *attempt.Hooks { return &t.hooks }

func kindIndex(k sturdy.AttemptKind) int {
	if int(k) < numKinds {
		return int(k)
	}
	return 0
}

func (t *Telemetry) attemptStart(ctx context.Context, a attempt.Info) context.Context {
	// Without a meter that records, the endpoint is not even looked up.
	if a.Kind == sturdy.Hedge && a.Endpoint != nil && t.hedges.Enabled(ctx) {
		t.hedges.Add(ctx, 1, t.endpoint(a.Tier, a.Endpoint.Name).hedge...)
	}
	// While spans are off (see StartCall) the attempt span would be a
	// no-op; so would it under a call span with an invalid span context
	// (an SDK gives even unsampled spans valid IDs). Skip its allocations.
	// attemptEnd then finds the call span, if any, in ctx: a no-op, whose
	// End does nothing.
	if t.spansOff() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	ctx, span := t.tracer.Start(ctx, SpanAttempt, t.attOpts...)
	if !span.IsRecording() {
		return ctx
	}
	ti := t.tier(a.Tier)
	var name string
	if a.Endpoint != nil {
		name = a.Endpoint.Name
		if ei := ti.eps[name]; ei != nil && a.N == 1 && a.Kind == sturdy.First {
			span.SetAttributes(ei.firstSpan...)
			return ctx
		}
	}
	span.SetAttributes(
		KeyEndpoint.String(name),
		ti.attrName,
		KeyAttemptNumber.Int(a.N),
		KeyAttemptKind.String(a.Kind.String()),
	)
	return ctx
}

func (t *Telemetry) attemptEnd(ctx context.Context, a attempt.Info, o sturdy.Outcome, won bool) {
	ci := int(o.Class)
	if ci >= numClasses {
		ci = int(sturdy.Fatal)
	}
	if a.Endpoint != nil {
		// Without a MeterProvider (or with views that drop both) the
		// instruments record nothing: the endpoint's attribute sets are
		// not even looked up.
		add := t.attempts.Enabled(ctx)
		rec := t.attemptDur != nil && t.attemptDur.Enabled(ctx)
		if add || rec {
			ei := t.endpoint(a.Tier, a.Endpoint.Name)
			if add {
				t.attempts.Add(ctx, 1, ei.add[kindIndex(a.Kind)][ci]...)
			}
			if rec {
				t.attemptDur.Record(ctx, o.Latency.Seconds(), ei.rec[ci]...)
			}
		}
	}
	if t.spansOff() {
		return // see attemptStart
	}
	// Spans may have turned on since attemptStart skipped this attempt's:
	// then ctx holds the call's span, if any, which was made while they
	// were off, so that SetAttributes and End below do nothing on it.
	span := trace.SpanFromContext(ctx)
	if !span.SpanContext().IsValid() {
		return // see attemptStart
	}
	if span.IsRecording() {
		w := 0
		if won {
			w = 1
		}
		span.SetAttributes(endAttrs[ci][w]...)
		if c := sturdy.Class(ci); c != sturdy.Success && c != sturdy.Canceled {
			span.SetStatus(codes.Error, c.String())
		}
	}
	span.End()
}

// endAttrs are the attributes an attempt span ends with, by class and
// won, built once (see endpointInst.firstSpan): sturdy.outcome,
// sturdy.attempt.won and, for a class that is the server's error,
// error.type. error.type takes sturdy's class: low-cardinality, and the
// same for HTTP and gRPC (the status code is beside it). A hedge that
// lost, or a caller who gave up, is "canceled": not the server's error,
// so it gets no error.type and the span's status stays unset.
var endAttrs = func() (a [numClasses][2][]attribute.KeyValue) {
	for c := range numClasses {
		class := sturdy.Class(c)
		for w := range 2 {
			kv := []attribute.KeyValue{KeyOutcome.String(class.String()), KeyWon.Bool(w == 1)}
			if class != sturdy.Success && class != sturdy.Canceled {
				kv = append(kv, semconv.ErrorTypeKey.String(class.String()))
			}
			a[c][w] = kv
		}
	}
	return a
}()

// OnFallback records a call leaving tier from for tier to.
func (t *Telemetry) OnFallback(from, to int, reason sturdy.FallbackReason) {
	t.fallbacks.Add(context.Background(), 1, metric.WithAttributes(
		KeyFallbackFrom.String(t.tier(from).name),
		KeyFallbackTo.String(t.tier(to).name),
		KeyFallbackReason.String(string(reason)),
	))
}

// OnStateChange records ejections. Put it in health.Config.OnStateChange
// (or call it from yours).
func (t *Telemetry) OnStateChange(c health.StateChange) {
	if c.To != health.Ejected {
		return
	}
	t.ejections.Add(context.Background(), 1, metric.WithAttributes(
		KeyEndpoint.String(c.Endpoint),
		KeyEjectionReason.String(c.Reason),
	))
}
