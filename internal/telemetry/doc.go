// Package telemetry turns what the core packages report (attempt hooks,
// fallbacks, health transitions, policy counters) into OpenTelemetry spans
// and metrics, once, for both adapters (httpmw and grpcmw).
//
// Spans: one "sturdy.call" (INTERNAL) per call, under the caller's span,
// and one "sturdy.attempt" child per attempt, CLIENT unless the adapter's
// transport makes the client spans (Config.AttemptSpanKind); adapters add
// the HTTP or RPC attributes. Tracers and meters carry Version and
// SchemaURL. Metrics are named "sturdy.*" and carry low-cardinality
// attributes only: endpoint name, tier name, outcome class, attempt kind,
// fallback reason. No label repeats a metric's name in Prometheus form.
// Series are bounded by configuration: calls and call durations by tiers
// × outcome classes; attempts by endpoints × kinds (3) × classes; attempt
// durations by endpoints × classes (Config.NoAttemptHistograms drops them);
// endpoint state by endpoints × 3 states. The GenAI metrics (genai.go) add
// models and providers: bounded by what the callers ask for.
// Nothing here ever sees a prompt, a body or a credential.
//
// The hot path allocates little: attribute sets for every endpoint and
// class and every (tier, class) are built by New (the GenAI sets, keyed
// by models, as they are first seen), spans are given attributes only
// when they record, and options are passed as prebuilt slices. A program
// that sets no providers pays least: a call without a parent span is
// quiet (Telemetry.StartCall), and all of its telemetry after StartCall
// is a few branches (BenchmarkCall).
// The package imports neither net/http nor grpc.
//
// Use (internal/pipeline does the wiring): New(Config) once per adapter
// instance; Hooks() is the attempt loop's hooks, OnFallback(from, to,
// reason) the chain's and OnStateChange the health tracker's. Per call:
// StartCall, pass its context to chain.Run, RecordFirstByte when the
// answer starts, RecordChunk for stream events, RecordGenAI and
// RecordCall when the result is released (the body closed or read to its
// end) or the call fails, then Call.End.
package telemetry
