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
// The hot path allocates little: attribute sets for every (endpoint, kind,
// class) and (tier, class) are built by New, spans are given attributes
// only when they record, and options are passed as prebuilt slices.
// The package imports neither net/http nor grpc.
//
// Use: New(Config) once per adapter instance; put Hooks() in
// degrade.Config.Hooks, OnFallback in degrade.Config.OnFallback and
// OnStateChange in health.Config.OnStateChange; per call, StartCall, pass
// its context to chain.Run, RecordCall when the call is answered or
// fails, and Call.End when its result is released.
package telemetry
