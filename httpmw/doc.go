// Package httpmw is an http.RoundTripper that keeps calls to OpenAI-style
// HTTP inference APIs answered when the servers behind them are slow,
// overloaded, rate-limited or down. It composes the core packages —
// balancer, health, failover, hedge, ratelimit and degrade — and records
// OpenTelemetry spans and metrics, in the shape of otelhttp's Transport.
//
// # The problem
//
// A client that talks to one URL fails when that server does. With
// several replicas or providers, and cheaper fallback models, every call
// needs the same decisions: which endpoint, when to give up on it, where
// to retry, when to send a hedge, when to fall back to another model and
// with which credential. Transport makes them inside the client, with no
// proxy and no extra hop.
//
// # Wiring it
//
//	tr, err := httpmw.NewTransport(nil,
//		httpmw.WithTier(degrade.Tier{Name: "gpt-4o", Model: "gpt-4o"},
//			httpmw.URL("openai", "https://api.openai.com", http.Header{"Authorization": {"Bearer " + key}}),
//			httpmw.URL("azure", "https://x.openai.azure.com/openai", http.Header{"Api-Key": {azureKey}})),
//		httpmw.WithTier(degrade.Tier{Name: "mini", Model: "gpt-4o-mini"}, ...),
//		httpmw.WithTTFBTimeout(5*time.Second),
//	)
//	defer tr.Close()
//	httpClient := &http.Client{Transport: tr}
//
// openai-go (github.com/openai/openai-go/v3); its own retries may stay on
// (see "No double retries"):
//
//	client := openai.NewClient(option.WithHTTPClient(httpClient),
//		option.WithBaseURL("http://llm/v1/"), option.WithAPIKey("unused"))
//
// sashabaranov/go-openai (no retries of its own):
//
//	cfg := goopenai.DefaultConfig("unused")
//	cfg.BaseURL, cfg.HTTPClient = "http://llm/v1", httpClient
//	client := goopenai.NewClientWithConfig(cfg)
//
// The client's base URL only supplies the path: the host is replaced by
// the picked endpoint's and the client's key is dropped (below).
//
// # The request's path
//
// For each RoundTrip: a "sturdy.call" span starts; the body is made
// replayable; the fallback chain walks the tiers from the primary, skipping one
// whose limiter or health says no; within a tier the shared attempt loop
// picks endpoints (balancer, health), retries elsewhere on a retryable
// class and hedges a slow attempt. Each attempt works on its own copy of
// the request and gets its own "sturdy.attempt" span (a call in a program
// that does not trace gets no spans at all: see below). Once the caller
// closes a served response's body, that copy's URL and header map are
// recycled for a later attempt, as net/http.RoundTripper's contract
// allows ("Callers should not mutate or reuse the request until the
// Response's Body has been closed"); WithoutRequestReuse turns that off
// for a base that keeps reading requests after that.
//
// Routing: the caller's URL path and query are kept; scheme, host and the
// endpoint URL's base path come from the endpoint. The path is the base
// path followed by the request path: endpoint "http://127.0.0.1:8001" and
// request path "/v1/chat/completions" give
// "http://127.0.0.1:8001/v1/chat/completions"; endpoint
// "https://h/openai" (or "https://h/openai/") gives
// "https://h/openai/v1/chat/completions". Escaped paths stay escaped.
//
// Credentials: the caller's Authorization, Api-Key, X-Api-Key and
// X-Goog-Api-Key headers are always removed, under any spelling of the key
// ("authorization" set straight into the map too; WithCallerCredentials
// keeps them), and the endpoint's Header is set: a key meant for one provider is
// never sent to another, across tiers as well. Redirects: http.Client
// follows a redirect by calling RoundTrip again with req.Response set; such
// a request goes once, as is, and carries the endpoint's headers only if it
// goes back to the endpoint that answered (an absolute redirect to its
// origin, or a relative one); a redirect elsewhere carries none.
//
// Misconfiguration: an endpoint Address ending in /v1 (the request path
// has it already), or http:// on port 443 and https:// on port 80, is a
// construction error; a scheme that contradicts a port it does not name
// cannot be seen without a dial. At run time, a 404 or 400 that one
// endpoint answers is retried on the others of its tier: if one serves,
// the first endpoint's health learns a failure (it is ejected as any
// failing endpoint) and the call is served; if all answer so, the first
// answer stands (the request was at fault).
//
// Model groups: a Transport is one chain of tiers whatever model a request
// names. A Router (NewRouter) serves several: each request goes to the
// Group its body's "model" names (or an alias), each group a Transport of
// its own, so that a call fails over and falls back within its group.
// Deployments: an endpoint whose Model differs from its tier's gets the
// body's model under that name.
//
// Fallback: when a later tier serves, the top-level "model" of a JSON body
// is rewritten to Tier.Model, and nothing else: every other byte goes out
// as the caller wrote it. A body that is not a well-formed JSON object
// fails the call as Fatal rather than go out with the wrong model; a body
// with no "model" key (Azure names the model in the URL) is sent as is.
// WithModelRewrite covers other formats. The response names who served
// it in the Sturdy-Endpoint and Sturdy-Tier headers (and the spans).
//
// Cache affinity: for self-hosted servers with a prompt cache (vLLM,
// SGLang), WithAffinity routes requests that share a prompt prefix, or a
// session (a header, the body's "prompt_cache_key"), to the same replica
// while its load allows (balancer.PrefixAffinity). The key is read once
// per call from the body the Transport keeps for replay; WithAffinityKey
// covers other formats.
//
// # Contracts
//
// RoundTrip follows net/http.RoundTripper: it is safe for concurrent use;
// it returns a response or an error, never both; it never modifies the
// caller's request (every attempt works on its own copy, with, when
// headers change or the tier hedges, its own header map); it always
// closes the request body, also when the call is refused before any
// attempt. An attempt's request and URL are its own (the URL is a copy
// of the endpoint's routed form of the caller's URL, which the endpoint
// computes once per caller URL); what it shares with the caller is only
// read: header values, and the header map itself when nothing changes.
//
// Bodies: each attempt gets its own body, from Request.GetBody or from a
// buffer of up to WithMaxBodyBuffer bytes (default 8 MiB). A body without
// GetBody is read once into memory of its exact size (one buffer of
// Content-Length bytes when it is known; pieces of up to 64 KiB, never
// regrown, when it is not), and every attempt reads it through a reader
// of its own: a call holds at most the body's size plus 64 KiB for it.
// A longer body without GetBody (one whose Content-Length says so is not
// read ahead at all) is sent once and never retried, hedged or rewritten;
// one whose length differs from its Content-Length fails the call.
// Error responses (a 503 that is retried, a 429) are read into memory (up
// to 64 KiB) by the attempt, so their connections go back to the pool
// before the call moves on. A losing hedge is different: its context is
// cancelled as soon as another attempt wins, to stop the server's work
// (for a model server, GPU time), and its body is then closed; on HTTP/1
// that connection is closed rather than reused, a cost taken on purpose.
// The
// winning attempt's context lives until the caller closes the response
// body or reads it to the end; then the call is released: the balancer,
// health and the token budget learn its outcome and usage (read from the
// response's "usage" as it passes by, when token limits are configured).
//
// Streams: a text/event-stream response is passed through unbuffered,
// chunk by chunk. Every attempt waits for the first body byte before it
// counts as a success, so failover and hedging decide before anything
// reaches the caller; WithTTFBTimeout fails over an attempt of a stream
// whose headers and first byte are late (class Timeout), and
// WithResponseTimeout one of a non-streaming call whose answer is late
// (its first byte comes once the whole answer is generated); both can be
// changed per call (ContextWithTimeouts, HeaderTTFBTimeout,
// HeaderResponseTimeout). After the first byte, errors
// reach the caller: a stream cut mid-way gives the read error, and a
// stream that ends without `data: [DONE]` gives io.ErrUnexpectedEOF
// (WithoutStreamTerminator turns that check off); either way the
// endpoint's health learns of it.
//
// Classification is Classify, by package sturdy's outcome classes: 429,
// 529 and 503 with a wait hint are Overloaded (the hint from sturdy.RetryAfterFromHeader
// pauses the endpoint's tier), other 5xx Unavailable, 400/413 saying the
// context window is exceeded TooLarge (the call moves to a tier with a
// larger window), 401/403 Auth, other 4xx Fatal (returned as is),
// transport errors by sturdy.ClassOf. WithClassifier replaces it.
//
// # No double retries
//
// The Transport retries; the client around it must not multiply that.
// Every call that fails ends in one final answer that tells a client not
// to retry it:
//
//   - when the deciding attempt had an HTTP answer (a 503, a 429), that
//     answer, with "X-Should-Retry: false" and "Sturdy-Attempts:
//     a:unavailable, b:overloaded" (endpoint names and classes only);
//   - when it had none (refused or reset connections, timeouts, the local
//     limits) and the client says it retries on its own (the
//     X-Stainless-Retry-Count header that openai-go and the other SDKs
//     generated by Stainless send, HeaderRetryCount) or WithErrorResponses
//     is set: a gateway-style answer, 502 (504 for a timeout, 429 for
//     Overloaded), with the same headers and an OpenAI-shaped JSON error
//     body ({"error":{"message","type":"sturdy_error","code":<class>}});
//   - otherwise the call's *sturdy.Error, which lists every attempt;
//     http.Client wraps it in a *url.Error, and errors.As(err, &sturdyErr)
//     and errors.Is(err, sturdy.ErrUnavailable) still find it. A call the
//     caller cancelled always ends with its error.
//
// openai-go v3 honours X-Should-Retry before its status rules and retries
// any transport error, so with its default retries (2) left on, a call
// makes no more requests than sturdy's own cap; option.WithMaxRetries(0)
// is no longer needed. go-openai has no retries. CallError recovers the
// *sturdy.Error from a final error response (openai-go:
// CallError(apiErr.Response) for an *openai.Error apiErr).
//
// # Telemetry
//
// Spans: "sturdy.call" (INTERNAL: the logical call) under the caller's
// span, ended when the response body is released, and one
// "sturdy.attempt" child per attempt. Attempt spans are CLIENT spans, one
// per physical request, with the HTTP client semantic-convention
// attributes (semconv 1.43, as otelhttp v0.72: http.request.method,
// server.address, server.port, url.full without its query,
// http.response.status_code, error.type for a failed attempt: sturdy's
// outcome class) beside sturdy.endpoint, sturdy.tier,
// sturdy.attempt.number, sturdy.attempt.kind (first, retry, hedge),
// sturdy.outcome and sturdy.attempt.won; a hedge that lost ends with
// sturdy.outcome "canceled" and no error status. A call with no span in
// its context whose tracer can only make no-ops (a trace/noop provider,
// or the global provider before otel.SetTracerProvider) gets no span,
// which nothing downstream can tell from the no-op one; spans resume once
// a real provider is set.
//
// Layering with otelhttp: sturdy alone already gives each request one
// CLIENT span. If the base transport is otelhttp's
// (NewTransport(otelhttp.NewTransport(base), ...), for its http.client.*
// metrics), otelhttp makes each request's CLIENT span and sturdy's attempt
// spans turn INTERNAL, so that no request has two. Wrapping the Transport
// in otelhttp instead adds a CLIENT span for the logical call above the
// requests' own: not recommended.
//
// Metrics, under the scope ScopeName with sturdy's version: sturdy.calls,
// sturdy.attempts, sturdy.hedges, sturdy.fallbacks, sturdy.ejections,
// sturdy.endpoint.state (label sturdy.health.state),
// sturdy.call.duration (the whole call, to the end of the body),
// sturdy.call.time_to_first_byte, sturdy.attempt.duration (off with
// WithoutAttemptHistograms) and sturdy.budget.refusals, with endpoint,
// tier, class, kind and reason attributes only: no prompt, body or
// credential. For chat completions, completions and embeddings, the GenAI
// client metrics of the OpenTelemetry GenAI conventions (1.41.0):
// gen_ai.client.token.usage (from the response's usage; for a stream, ask
// for it with stream_options.include_usage), gen_ai.client.operation.duration
// (to the end of the body), and for streams
// gen_ai.client.operation.time_to_first_chunk and time_per_output_chunk
// (each SSE event after the first, the [DONE] terminator included), with
// gen_ai.operation.name, gen_ai.provider.name (Endpoint.Provider),
// gen_ai.request.model, gen_ai.response.model, server.address,
// server.port and error.type.
package httpmw
