package sturdy

// LoadReport is a server's report of its own load, sent with an answer:
// the ORCA (Open Request Cost Aggregation) load report that vLLM and
// Triton put in the endpoint-load-metrics response header when asked,
// and that grpc-go servers send in the endpoint-load-metrics-bin trailer.
// Only what a balancer can act on is kept; every field is finite and not
// negative, and zero means "not reported".
type LoadReport struct {
	// Queue is the number of requests waiting at the server for a slot
	// (vLLM's num_requests_waiting).
	Queue float64
	// KVCache is the share of the server's KV cache in use, from 0 to 1
	// (vLLM's kv_cache_usage_perc, Triton's kv_cache_utilization).
	KVCache float64
	// Utilization is the server's application_utilization or, failing
	// that, its cpu_utilization, the figure gRFC A58's weighted
	// round-robin reads. It may exceed 1 when the server runs past its
	// soft limit.
	Utilization float64
}
