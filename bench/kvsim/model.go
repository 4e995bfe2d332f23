package kvsim

import "time"

// BlockTokens is the size of a KV block in tokens, vLLM's default
// (--block-size 16); prefix caching names and matches whole blocks.
const BlockTokens = 16

// Hardware is the cost model of one replica: a 7–8B model served by vLLM
// on one H100 with continuous batching and chunked prefill. Each scheduler
// iteration decodes one token of every running request and spends what is
// left of StepTokens on prefill, first come first served; it lasts
//
//	StepBase + DecodePerSeq·(requests decoding) + PrefillPerToken·(prefill tokens)
//
// so inter-token latency grows with the batch and with the prefill
// sharing its iterations, and a request's time to first token is its wait
// plus (prompt − cached tokens)·PrefillPerToken (spread over iterations)
// plus Overhead.
//
// The figures (DefaultHardware) are round numbers inside published ranges;
// the simulation compares routers on the same model, so it is the ratio of
// prefill to decode cost that matters, not the third digit:
//   - Prefill. An 8B model needs about 2·8e9 = 16 GFLOP a token; an H100
//     SXM's ~990 dense BF16 TFLOPS at 40–60% utilisation gives 25–37k
//     tokens/s in theory. Measured serving figures are lower: Red Hat's
//     llm-d talk (Summit 2026, summarised at lucaberton.com/blog/
//     llmd-kv-cache-routing-summit-2026) shows a 10k-token prompt on
//     Qwen3-32B at 4.3 s cold, ~2.3k tokens/s for a 32B model, about 9–10k
//     tokens/s scaled to 8B. We take 12k tokens/s (83 µs a token).
//   - Decode. Each step reads the 16 GB of weights (4.8 ms at 3.35 TB/s)
//     plus every running sequence's KV; Microsoft's Llama 3.1 8B on
//     ND-H100-v5 with vLLM (techcommunity.microsoft.com, Azure HPC blog,
//     Aug 2025) and Lambda's vLLM H100 benchmarks (LambdaLabsML/
//     vllm-benchmark) report time per output token of roughly 7–20 ms from
//     batch 1 to moderate batches. We take 7 ms + 0.15 ms a sequence
//     (16.6 ms at 64).
//   - StepTokens 2048 and MaxSeqs 256 are vLLM's max_num_batched_tokens
//     (chunked prefill, online serving) and max_num_seqs defaults.
type Hardware struct {
	PrefillPerToken time.Duration
	StepBase        time.Duration
	DecodePerSeq    time.Duration
	StepTokens      int
	MaxSeqs         int
	// Overhead is added to every time to first token (HTTP, tokenising,
	// scheduling).
	Overhead time.Duration
	// CapacityBlocks is the KV memory in blocks. Workloads set it from
	// their KV demand (see Workload.Capacity).
	CapacityBlocks int
}

// DefaultHardware is the model described on Hardware.
var DefaultHardware = Hardware{
	PrefillPerToken: 83 * time.Microsecond,
	StepBase:        7 * time.Millisecond,
	DecodePerSeq:    150 * time.Microsecond,
	StepTokens:      2048,
	MaxSeqs:         256,
	Overhead:        10 * time.Millisecond,
}
