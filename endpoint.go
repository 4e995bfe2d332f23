package sturdy

import "time"

// Endpoint is one place a call can go: a model server replica, a
// provider's API, a gRPC target. Policies identify endpoints by Name, which
// must be unique within a pool.
type Endpoint struct {
	// Name identifies the endpoint in errors, spans, metrics and health
	// state. It must be unique in a pool and low-cardinality.
	Name string
	// Address is the base URL (HTTP) or target (gRPC) of the endpoint.
	Address string
	// Weight is the endpoint's relative share for weighted balancers.
	// Zero means 1; negative weights are rejected.
	Weight int
	// Model is the endpoint's own name for the model it serves, when it
	// differs from its tier's (an Azure deployment, a vLLM
	// --served-model-name): httpmw rewrites a request's model to it.
	// Empty means the tier's.
	Model string
	// Labels are free-form attributes (region, provider, ...). Sturdy
	// never puts them in metrics; users may.
	Labels map[string]string
}

// EffectiveWeight returns Weight, or 1 when Weight is zero.
func (e *Endpoint) EffectiveWeight() int {
	if e.Weight == 0 {
		return 1
	}
	return e.Weight
}

// Outcome is how one attempt ended. Policies learn from it: the balancer
// (latency, load), health (failures), rate limits (cooldowns) and telemetry.
type Outcome struct {
	Class      Class         // what the ending means
	Latency    time.Duration // from the attempt's start to its outcome
	Err        error         // the attempt's error, nil on success
	RetryAfter time.Duration // the server's wait hint, zero if none

	// End is when the attempt ended, if the caller knows; zero means the
	// receiver reads the clock. A caller that measured Latency has it
	// (start.Add(Latency)) and saves the balancer a clock read, which on
	// some machines costs as much as the rest of a pick. The health
	// tracker counts a success in its failure-rate window as of End too;
	// its state machine (ejections, probation) runs on its own clock, at
	// the time an outcome is reported.
	End time.Time

	// Load is what the server reported about its own load with this
	// answer (an ORCA load report), or nil when it reported nothing or
	// the adapter does not ask for reports. The balancer copies what it
	// needs before its done func returns, so the report may live in
	// memory the caller reuses afterwards.
	Load *LoadReport
}
