// Package grpcmw keeps gRPC inference clients (Triton and KServe v2,
// custom model servers) answered when the servers behind them are slow,
// overloaded, rate-limited or down.
//
// # The problem
//
// grpc-go balances over the addresses of one target, but it does not hedge
// (gRFC A6 hedging is not implemented in Go), ships no latency-aware
// balancer, cannot fall back to another model, and retries only on the
// connection it started on. A replica that is slow this minute, a server
// that answers RESOURCE_EXHAUSTED, or a region that is down becomes a
// failed or slow user request.
//
// # Wiring
//
// A Client sends each call over a pool of endpoints, each a
// grpc.ClientConnInterface: a *grpc.ClientConn the caller dialed (Conn), or
// one grpcmw dials from a target (Target) and closes in Close. Endpoints
// are grouped in tiers (WithTier; WithEndpoints for one): tier 0 serves the
// primary model, later tiers are fallbacks. Each call goes through the
// pipeline httpmw shares: tiers → the tier's rate limiter → the attempt loop that
// runs failover and hedging together → sturdy's balancer (P2C Peak-EWMA by
// default) over the endpoints health allows. A Router (NewRouter) serves
// several model groups, a Client each, picked per call by a GroupKey.
//
//	c, err := grpcmw.New(
//		grpcmw.WithTier(degrade.Tier{Name: "big", Model: "llama-70b"},
//			grpcmw.Target("a", "10.0.0.1:8001"), grpcmw.Target("b", "10.0.0.2:8001")),
//		grpcmw.WithTier(degrade.Tier{Name: "small", Model: "llama-8b"},
//			grpcmw.Target("c", "10.0.0.3:8001")),
//		grpcmw.WithDialOptions(grpc.WithTransportCredentials(creds)),
//		grpcmw.WithHedge(hedge.Config{}),          // p95 delay, 5% budget, per tier
//		grpcmw.WithModelRewrite(setModelName),     // for the fallback tiers
//		grpcmw.WithProbes(health.ProbeConfig{}),   // grpc.health.v1 Check
//	)
//	defer c.Close()
//	stub := pb.NewGRPCInferenceServiceClient(c) // Client is a grpc.ClientConnInterface
//
// Or install it on a conn the program already has, as interceptors
// (Client.UnaryClientInterceptor, Client.StreamClientInterceptor, or both
// with Client.DialOptions). The conn the interceptors are installed on
// never carries a call: every call goes to the endpoint the balancer picks,
// so that conn never even connects. Treating it as a fallback would hide
// the pool's failures behind an endpoint sturdy knows nothing about; put
// it in a tier if it should serve. Package-level UnaryClientInterceptor and
// StreamClientInterceptor build a Client that owns nothing to close.
//
// Configuration that cannot work fails in New with an error naming what to
// fix. Turn off the retries of conns you pass in (grpc.WithDisableRetry):
// grpcmw retries, and nested retries multiply attempts; conns grpcmw dials
// have retries off.
//
// Each attempt carries the caller's outgoing metadata plus its endpoint's
// Endpoint.Metadata (credentials meant for that endpoint only), whose keys
// replace the caller's; the caller's own "authorization", "api-key",
// "x-api-key" and "x-goog-api-key" are dropped unless
// WithCallerCredentials is given. The
// caller's grpc.Header, grpc.Trailer and grpc.Peer options receive the
// deciding attempt's values; other call options go to every attempt.
//
// # Classification
//
// Each attempt's status becomes a sturdy.Class (see package sturdy's
// Class), which decides whether to retry elsewhere, whether it counts
// against the endpoint's health, and what the balancer learns:
//
//	UNAVAILABLE                      unavailable   retry elsewhere; counts against health
//	INTERNAL, UNKNOWN                unavailable   (WithCodeClass changes it)
//	RESOURCE_EXHAUSTED               overloaded    retry elsewhere; the endpoint cools down for
//	                                               grpc-retry-pushback-ms (trailer, else header)
//	  with a negative/invalid pushback  fatal      gRFC A6: the server says do not retry
//	DEADLINE_EXCEEDED (attempt's)    timeout       retry elsewhere; counts against health
//	UNAUTHENTICATED, PERMISSION_DENIED auth        retry elsewhere; ejects the endpoint
//	INVALID_ARGUMENT                 fatal, or too_large when WithTooLarge says so
//	                                               (degrade moves to a larger context window)
//	CANCELED, caller's context done  canceled      returned as is
//	any other code                   fatal         returned as is
//
// An attempt cut by the failover policy's AttemptTimeout is a timeout too;
// once the caller's own deadline has passed, every attempt is canceled,
// not the endpoint's fault.
//
// A failed call returns a *StatusError: a gRPC status error whose code is
// the deciding attempt's (UNAVAILABLE when no endpoint could be picked,
// RESOURCE_EXHAUSTED when a limiter refused, CANCELED or DEADLINE_EXCEEDED
// when the caller's context ended), whose message lists every attempt, and
// which wraps the *sturdy.Error (errors.As, errors.Is with sturdy's
// sentinels). When a server asked to wait, a google.rpc.RetryInfo detail
// says how long.
//
// # Rate limits the servers report
//
// Unless learning is off (ratelimit.LearnConfig.Off in WithLimiter), the
// Client reads the rate-limit fields a server sends as response metadata,
// the same fields under the same (lower-case) names as httpmw's response
// headers: OpenAI/Azure x-ratelimit-*, Anthropic anthropic-ratelimit-*
// and the IETF RateLimit and RateLimit-Policy fields. They pace the
// endpoint before its RESOURCE_EXHAUSTED, as over HTTP (see ratelimit's
// Limiter.Listen). A unary call's are read from its headers and trailer;
// a stream's from its headers once its first message has come, and from
// its trailer when it ends. grpc-go copies header metadata for each call
// that asks for it, so the headers (and a stream's trailer) of an
// endpoint whose last ones carried no rate-limit field are read on one
// call in 64 only, until they do again.
//
// # Unary calls and hedging
//
// Hedged attempts of one call run at once, so they never share a reply:
// each decodes into its own new message of the reply's type, and only the
// winner's is copied into the caller's reply (proto.Reset, proto.Merge).
// Without hedging, attempts run one after another and decode into the
// caller's reply directly.
//
// # Streams
//
// Streams fail over but are never hedged. A stream's endpoint is decided at
// its first RecvMsg (or Header): until a response reaches the caller, a
// failed attempt is retried elsewhere; after that, errors surface to the
// caller. To fail over, a stream replays what the caller sent: messages
// sent before the first response are kept (WithStreamReplay, 16 messages
// and 4 MiB by default; server-streaming calls always keep their one
// request) and sent again, in order, on the next attempt. A client- or
// bidi-streaming call that sends more than that before its first response
// commits to one endpoint without failover. Messages are kept by
// reference: as grpc-go already requires, do not modify a message after
// SendMsg.
//
// grpc-go's rules for callers hold: one goroutine may call SendMsg while
// another calls RecvMsg; CloseSend is not called concurrently with
// SendMsg; read the stream until RecvMsg returns an error (io.EOF for a
// clean end) or cancel its context. Either releases everything the stream
// holds (the winner's stream and context, its balancer and health report,
// its rate-limit permit, its spans); no goroutine is left behind. Before
// the decision, SendMsg and CloseSend are recorded rather than sent, and
// Context returns the caller's context.
//
// # Degrade
//
// WithModelRewrite adapts a request to the fallback tier it goes to (for
// example, sets a model-name field to Tier.Model); it must return a new
// message rather than change the caller's. The primary tier gets the
// caller's request as written, as in httpmw. For streams it applies to
// every message sent.
//
// # Cache affinity
//
// WithAffinity routes calls with the same key to the same replica while
// its load allows (balancer.PrefixAffinity), so that a self-hosted
// server's prompt cache hits. gRPC messages have no one shape: the key
// comes from WithAffinityKey's hook (balancer.PromptKey of the prompt a
// message carries) or from a session in the outgoing metadata.
//
// # Health
//
// Outcomes feed a health.Tracker (passive outlier detection, WithHealth);
// with WithProbes, every endpoint is also probed with the standard
// grpc.health.v1 Health/Check (HealthProber). A probe failure ejects the
// endpoint; a SERVING answer brings it back. UNIMPLEMENTED counts as
// healthy, as in grpc-go. A tier whose endpoints are all ejected or cooling
// down is skipped (unless it is the last).
//
// # A balancer for plain grpc-go
//
// Package grpcmw/p2c registers the same P2C Peak-EWMA balancer with
// grpc-go, as "sturdy_p2c_ewma", for programs that keep grpc-go's own
// resolvers and one *grpc.ClientConn.
//
// # Telemetry
//
// Each call has a "sturdy.call" span (INTERNAL) under the caller's, with
// one "sturdy.attempt" CLIENT child per attempt carrying the RPC
// semantic-convention attributes (semconv 1.43: rpc.system.name "grpc",
// rpc.method, server.address, server.port, rpc.response.status_code;
// error.type, sturdy's class, on a failure), and sturdy.* metrics, under
// the instrumentation scope Scope with sturdy's version (see
// WithTracerProvider, WithMeterProvider, WithoutAttemptHistograms). The
// metric names do not collide with otelgrpc's or grpc-go's
// stats/opentelemetry ("grpc.*", "rpc.*"). Installed on the endpoint conns
// as well, those make a second CLIENT span per attempt, under sturdy's;
// keep one of the two for traces (their metrics do not overlap).
package grpcmw
