// Package sturdytest holds test helpers for users of sturdy: a fake
// OpenAI-compatible inference server for tests, benchmarks and demos — a model server that can be made slow, overloaded,
// rate-limited, flaky or down, on purpose and reproducibly.
//
// A Server is an http.Handler; StartLLM serves one on a loopback port:
//
//	srv, err := sturdytest.StartLLM(sturdytest.Config{
//		Name:      "primary",
//		Models:    []string{"gpt-4o"},
//		Seed:      1,
//		Latency:   sturdytest.Latency{Fixed: 2 * time.Millisecond, Median: 3 * time.Millisecond, Sigma: 0.5},
//		ErrorRate: 0.05,
//		RateLimit: sturdytest.RateLimit{Capacity: 200},
//	})
//	...
//	defer srv.Close()
//	client := openai.NewClient(option.WithBaseURL(srv.URL()+"/v1"), option.WithMaxRetries(0))
//
// Endpoints:
//
//   - POST /v1/chat/completions: a chat.completion echoing the request's
//     model, or with "stream": true server-sent chat.completion.chunk
//     events flushed one by one, a usage chunk when
//     "stream_options": {"include_usage": true}, then `data: [DONE]`.
//   - GET /v1/models: the configured models.
//   - GET /health: 200; when the server is down, 503 (Down503) or a reset
//     connection (DownReset).
//
// Faults, all in Config and changeable while serving (Update, SetDown,
// SetLatency, SetErrorRate, SetRateLimit): latency (fixed plus lognormal),
// a delay before the headers and one between headers and first body byte,
// 500s at a rate, 429s (always, at a rate, in time bursts, or above a
// capacity in requests per second) with Retry-After, retry-after-ms and
// x-ratelimit-* headers, outages (503, or connections reset without a
// response), streams cut mid-way or ended without `data: [DONE]`, a
// context window answered with OpenAI's 400 context_length_exceeded, a
// required API key (401 otherwise), and a fixed number of concurrency
// slots that requests queue for.
//
// Request handling order for a chat completion: outage, API key, body
// (413/400), model (404), context window (400), rate limit (429),
// concurrency slot, Latency+SlowHeaders, error rate (500), response.
//
// Every random choice comes from sources seeded by Config.Seed, drawn for
// each request under one lock, so a sequential run is reproducible. Stats
// counts requests by path, status and model, in-flight and peak in-flight
// requests, aborted and canceled ones; SeenCredentials lists every API key
// the server received, so a test can assert that a credential never
// reached the wrong server.
//
// Everything is bounded: bodies are limited (4 MiB by default), every wait
// ends when the client goes away or the server is closed, and Close returns
// once no goroutine of the server is left. Only 127.0.0.1 is listened on.
package sturdytest
