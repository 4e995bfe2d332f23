// Package kvsim is a GPU-free simulator of cache-aware routing to
// self-hosted model servers (issue 16, item 4): it shows what sturdy's
// PrefixAffinity balancer gains over cache-blind policies, and what it
// leaves to an oracle that sees every replica's cache.
//
// The model (Hardware, cache, replica) is a fleet of OpenAI-compatible
// servers like vLLM: continuous batching with chunked prefill, a prefix
// cache of 16-token blocks named by chained hashes with least-recently-used
// eviction, and per-token costs of a 7–8B model on one H100 taken from
// published figures (Hardware's doc cites them). Workloads are seeded and
// open-loop (Poisson arrivals), after llm-d's shared-context benchmark and
// four other shapes, plus a replica restart and a scale-out.
//
// Run simulates one workload under one client as a discrete-event
// simulation in virtual time: deterministic for a seed, and fast (a
// hundred thousand scheduler iterations a second) because nothing sleeps.
// Clients are sturdy's real balancer.Balancer (New, Pick with
// balancer.WithKey and balancer.PrefixKey, and done with an Outcome whose
// End is the virtual time, so Peak-EWMA ages its estimates in virtual time
// too) or an oracle. Prompts are sequences of block names, h_i =
// mix(h_{i-1}, block_i), the chain internal/prefix computes over a chat
// body's text; a simulator has no text, and internal packages of the
// library cannot be imported from this module.
//
// RunSuite runs every workload, client and seed; Suite.Markdown and
// Suite.Plots write the report that cmd/kvsim produces:
//
//	go run ./bench/cmd/kvsim -out /tmp/kvsim
package kvsim
