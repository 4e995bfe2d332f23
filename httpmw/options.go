package httpmw

import (
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/pipeline"
	"github.com/sturdyai/sturdy/ratelimit"
)

// DefaultMaxBodyBuffer is how much of a request body without GetBody the
// Transport buffers to replay it, when WithMaxBodyBuffer is not given.
const DefaultMaxBodyBuffer = 8 << 20

// Endpoint is one HTTP server of a tier: a sturdy.Endpoint whose Address
// is the server's base URL, and the headers sent to it alone.
type Endpoint struct {
	// Endpoint names the server (unique across every tier of a Transport,
	// low-cardinality: it appears in errors, spans, metrics, health and
	// the Sturdy-Endpoint response header) and carries its weight and
	// labels. Address is its base URL: scheme (http or https), host and an
	// optional base-path prefix, e.g. "https://api.openai.com" or
	// "https://x.openai.azure.com/openai". A request's path is appended to
	// the prefix (see the package doc). No query, fragment or user info:
	// put credentials in Header, a query in Query. Model, if set and not
	// the tier's, is the endpoint's own name for the tier's model (an
	// Azure deployment, a vLLM --served-model-name): requests to this
	// endpoint go out with the body's "model" rewritten to it, in tier 0
	// too.
	sturdy.Endpoint
	// Header is sent on every request to this endpoint and only to it,
	// replacing the caller's credentials: put the endpoint's
	// "Authorization: Bearer ..." or "api-key" here. Nil means none.
	Header http.Header
	// Provider is the endpoint's gen_ai.provider.name in the GenAI
	// metrics, one of the conventions' values ("openai", "azure.ai.openai",
	// "anthropic", "gcp.gemini", ...) or your own. Empty means
	// DefaultProvider ("openai": the API httpmw speaks).
	Provider string
	// Query is set in the URL query of every request to this endpoint,
	// replacing the caller's values of the same keys: Azure OpenAI's
	// "api-version", say. Nil means none.
	Query url.Values
	// ProbePath is the path this endpoint's probe GETs when probes are on
	// (WithProbes), e.g. "/v1/models" for a provider without /health.
	// Empty means the Transport's (WithProbePath).
	ProbePath string
	// NoProbe leaves this endpoint to passive health (its answers to
	// calls) when probes are on.
	NoProbe bool
	// Limit is the endpoint's own request and token rates, a provider
	// key's quota, beside its tier's Limit: an endpoint over it is passed
	// over for another of its tier (then the call falls back), as when
	// its learned rate refuses. Tokens are charged as for a tier's limit:
	// the request's estimate at the pick, corrected to the response's
	// usage when its body is closed, refunded for an attempt that failed.
	// The zero Limit is none (the rate is then learned from the
	// endpoint's 429s and rate-limit headers).
	Limit ratelimit.Limit
	// QuotaKey names the provider quota the endpoint draws on, when
	// several endpoints share one (deployments behind one API key):
	// endpoints with the same QuotaKey are paced as one, with one learned
	// rate, one rate their rate-limit headers told, one cooldown and one
	// Limit (set it on one of them, or the same on each). They share it
	// within one Transport (with a Router, within one group); a shared
	// Store in WithLimiter shares its buckets and cooldowns across them
	// and across processes, and a LearnStore (ratelimit/redisstore) its
	// learned rate too; a told token rate stays in each. Empty means the
	// endpoint is its own quota. It has the same meaning in grpcmw.
	QuotaKey string
}

// URL returns an Endpoint named name at the base URL baseURL, with header
// sent to it alone (nil for none).
func URL(name, baseURL string, header http.Header) Endpoint {
	return Endpoint{Endpoint: sturdy.Endpoint{Name: name, Address: baseURL}, Header: header}
}

// Classifier turns an attempt's response or transport error into its
// outcome. Call Classify inside it for the default rules. It may read the
// response body only if it puts back an equivalent one.
type Classifier func(resp *http.Response, err error) (o sturdy.Outcome)

// ModelRewrite rewrites a request body for tier's Model, for bodies that
// are not OpenAI-style JSON (the default rewrites the top-level "model"
// field). r is the caller's request (read it, never change it); body is
// the whole body. It is called for every tier but the primary whose Model
// is set, once per call and tier. An error fails the attempt as Fatal, and
// the call with it.
type ModelRewrite func(tier degrade.Tier, r *http.Request, body []byte) ([]byte, error)

// Option configures a Transport.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	pipeline.Config
	groupKey     GroupKey // a Router's; a Transport ignores it
	classifier   Classifier
	rewrite      ModelRewrite
	maxBody      int64
	ttfb         time.Duration
	respTimeout  time.Duration // WithResponseTimeout
	errResponses bool          // WithErrorResponses
	noTerm       bool
	noReuse      bool // WithoutRequestReuse
	probePath    string
	keyHook      KeyFunc
	eps          [][]Endpoint // by tier, as WithTier gave them
}

// The options below exist in grpcmw too, with the same names, argument
// types and meanings; the internal pipeline applies them for both.

// WithTier adds a tier to the fallback chain, with its endpoints: tiers
// are tried in the order they are given, the first being the primary.
// tier.Picker must be nil (the Transport balances over eps); every other
// field of degrade.Tier (Model, Quality, ContextWindow, Timeout, Limit,
// Failover, Hedge) works as degrade documents. At least one tier with at
// least one endpoint is required.
func WithTier(tier degrade.Tier, eps ...Endpoint) Option {
	return optionFunc(func(c *config) {
		t := pipeline.Tier{Tier: tier}
		for _, e := range eps {
			t.Endpoints = append(t.Endpoints, e.Endpoint)
		}
		c.Tiers = append(c.Tiers, t)
		c.eps = append(c.eps, append([]Endpoint(nil), eps...))
	})
}

// WithEndpoints is WithTier for a single tier named "primary".
func WithEndpoints(eps ...Endpoint) Option { return WithTier(degrade.Tier{Name: "primary"}, eps...) }

// WithFailover sets the failover policy of every tier that has none of its
// own (degrade.Tier.Failover); each tier gets its own Policy, and so its
// own retry budget. The default is the zero Config: 3 attempts per tier
// and a 10% retry budget. MaxAttempts 1 turns retries off.
func WithFailover(cfg failover.Config) Option {
	return optionFunc(func(c *config) { c.Failover = cfg })
}

// WithHedge turns hedging on for every tier that has no Hedge of its own;
// each tier gets its own policy, since tiers' latencies differ. The
// default is no hedging.
func WithHedge(cfg hedge.Config) Option {
	return optionFunc(func(c *config) { c.Hedge = &cfg })
}

// WithHealth sets passive health detection (the default is the zero
// health.Config: Envoy-style outlier detection). cfg.OnStateChange, if
// set, is called besides WithOnStateChange's hook and the telemetry.
func WithHealth(cfg health.Config) Option {
	return optionFunc(func(c *config) { c.Health = cfg })
}

// WithProbes turns on active health probes of every endpoint, as cfg says
// (interval, jitter, timeout), until Close. The default is none: passive
// detection only. What a probe asks is the adapter's: see WithProbePath.
func WithProbes(cfg health.ProbeConfig) Option {
	return optionFunc(func(c *config) { c.Probes = &cfg })
}

// WithLimiter sets the rate limiter's settings other than the tiers'
// limits (degrade.Tier.Limit, keyed by tier name): a shared Store for
// fleet-wide limits, MaxKeys. The default is an in-process limiter.
func WithLimiter(cfg ratelimit.Config) Option {
	return optionFunc(func(c *config) { c.Limiter = cfg })
}

// WithThrottle turns on the SRE book's adaptive throttling, one throttle
// per tier: while a tier's servers refuse calls (overloaded, unavailable,
// timed out), a share of its calls skips it locally, without a request.
// The default is none.
func WithThrottle(cfg ratelimit.ThrottleConfig) Option {
	return optionFunc(func(c *config) { c.Throttle = &cfg })
}

// WithBalancer sets the balancer of every tier: cfg.Policy (default P2C
// Peak-EWMA), PanicThreshold, Decay, DefaultRTT, Seed. cfg.Endpoints and
// cfg.Health must be unset: the tiers and WithHealth fill them.
func WithBalancer(cfg balancer.Config) Option {
	return optionFunc(func(c *config) { c.Balancer = cfg })
}

// WithAffinity turns on cache-aware routing for every tier: the
// balancer.PrefixAffinity policy with a's settings (zero fields mean
// their defaults), so that requests sharing a prompt prefix or a session
// go to the same replica while its load allows, and its prompt cache
// hits. WithBalancer's Policy must then be left unset (or PrefixAffinity)
// and its Config.Affinity unset; WithBalancer with Policy PrefixAffinity
// alone is WithAffinity with its Config.Affinity.
//
// The key is found once per call, before its first attempt, and every
// attempt and tier of the call routes by it: from WithAffinityKey's hook,
// else a.SessionHeader's header, else the body's "prompt_cache_key"
// (and, with a.SessionFromUser, "user"), else the prompt of an OpenAI
// chat/completions or completions body, hashed in blocks of a.BlockSize
// bytes and seeded with the body's "model" and "cache_salt" (see
// balancer.Affinity). A call with no key, or a prompt shorter than
// a.MinBlocks blocks, goes by P2C Peak-EWMA. The body is read from the
// copy the Transport keeps to replay it (a body with GetBody is read once,
// up to WithMaxBodyBuffer, and the copy shared with the model rewrite of
// fallback tiers); a longer body gets no key. A fallback tier routes by
// the key of the caller's model, not its own.
func WithAffinity(a balancer.Affinity) Option {
	return optionFunc(func(c *config) { c.Affinity = &a })
}

// WithAffinityKey sets the hook that finds a call's affinity key before
// the Transport's own reading (see KeyFunc and WithAffinity, which it
// needs).
func WithAffinityKey(f KeyFunc) Option {
	return optionFunc(func(c *config) { c.keyHook = f })
}

// WithMaxWait lets a call wait up to d for a tier's limiter when every
// tier refuses it (degrade.Config.MaxWait). Zero (the default) fails such
// a call at once.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.MaxWait = d })
}

// WithModelRewrite replaces the default rewrite of the request for a
// fallback tier's Model (see ModelRewrite).
func WithModelRewrite(f ModelRewrite) Option {
	return optionFunc(func(c *config) { c.rewrite = f })
}

// WithTracerProvider sets the tracer provider. Default: otel's global.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.TracerProvider = tp })
}

// WithMeterProvider sets the meter provider. Default: otel's global.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.MeterProvider = mp })
}

// WithoutAttemptHistograms leaves out the sturdy.attempt.duration
// histogram, whose series grow with endpoints × outcome classes ×
// buckets; the sturdy.attempts counter and the call histograms stay. It
// has the same name and meaning in httpmw and grpcmw.
func WithoutAttemptHistograms() Option {
	return optionFunc(func(c *config) { c.NoAttemptHistograms = true })
}

// WithLoadReports reads the ORCA load report a server sends with each
// answer (its queue of waiting requests, KV-cache use, utilization) and
// lets the balancer price endpoints with it (see the balancer package
// doc). Over HTTP the Transport asks for reports with the request header
// Endpoint-Load-Metrics-Format: TEXT, as vLLM and Triton expect, and
// reads the Endpoint-Load-Metrics response header in its TEXT, JSON or
// BIN form, or Endpoint-Load-Metrics-Bin; over gRPC the Client reads the
// endpoint-load-metrics-bin trailer of unary calls, and of streams when
// they end (the balancer learns it as the stream's report), which grpc-go
// servers send when they install orca.CallMetricsServerOption. A malformed
// report is ignored. Off by default: without it nothing is asked for or
// read. It has the same name and meaning in httpmw and grpcmw.
func WithLoadReports() Option {
	return optionFunc(func(c *config) { c.LoadReports = true })
}

// WithCallerCredentials passes the caller's own credentials
// (Authorization, Api-Key, X-Api-Key and X-Goog-Api-Key) through to
// whichever endpoint serves the call; an endpoint's own Header still
// replaces them. By default they are dropped: with several providers, a
// key set for one would reach all of them. Use it only when every
// endpoint is meant to receive the caller's key.
func WithCallerCredentials() Option {
	return optionFunc(func(c *config) { c.CallerCredentials = true })
}

// WithOnAttempt calls f once for every attempt when it ends (a served
// attempt's when its response body is closed): its endpoint, tier,
// number, kind (first, retry, hedge), outcome class and latency. f runs
// synchronously on the goroutine that ended the attempt: it must be quick
// and must not block (log, count; no I/O that can stall).
func WithOnAttempt(f func(sturdy.Attempt)) Option {
	return optionFunc(func(c *config) { c.OnAttempt = f })
}

// WithOnFallback calls f whenever a call leaves a tier for a later one,
// synchronously on the call's goroutine; it must be quick.
func WithOnFallback(f func(sturdy.Fallback)) Option {
	return optionFunc(func(c *config) { c.OnFallback = f })
}

// WithOnStateChange calls f for every health state change of an endpoint
// (ejected, probation, healthy), synchronously on the goroutine that
// noticed it (often a call's); it must be quick. It is never called
// while sturdy holds a lock.
func WithOnStateChange(f func(health.StateChange)) Option {
	return optionFunc(func(c *config) { c.OnStateChange = f })
}

// The options below are HTTP's own.

// WithProbePath sets the path a probe GETs, appended to each endpoint's
// URL with the endpoint's own headers (Endpoint.ProbePath overrides it,
// Endpoint.NoProbe turns the probe off). The default is "/health", as
// vLLM, SGLang and TGI serve it. A probe checks that the server is up:
// it fails on a connection error, a timeout, a 5xx, 408 or 429, and
// passes on any other answer, so that a provider without the path (404)
// or one that wants another credential there (401, 403) is never ejected
// by its probe; calls still report such answers.
func WithProbePath(path string) Option {
	return optionFunc(func(c *config) { c.probePath = path })
}

// WithClassifier replaces Classify, the default classification of
// responses and errors.
func WithClassifier(f Classifier) Option {
	return optionFunc(func(c *config) { c.classifier = f })
}

// WithMaxBodyBuffer sets how many bytes of a request body without GetBody
// are buffered to replay it (default DefaultMaxBodyBuffer). A longer body
// is sent once, never retried, hedged or rewritten.
func WithMaxBodyBuffer(n int64) Option {
	return optionFunc(func(c *config) { c.maxBody = n })
}

// WithTTFBTimeout fails over an attempt of a streaming call that has not
// delivered its response headers and first body byte within d (class
// Timeout, ErrTTFB). It applies to streams only (a request with Accept:
// text/event-stream, or a JSON body whose top-level "stream" is true): a
// non-streaming answer's first byte comes only once all of it is
// generated, which WithResponseTimeout bounds. Zero (the default) means no
// time-to-first-byte timeout; the caller's deadline and failover's
// AttemptTimeout still apply. ContextWithTimeouts and HeaderTTFBTimeout
// override it per call.
func WithTTFBTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.ttfb = d })
}

// WithoutRequestReuse stops the Transport from recycling parts of the
// requests it sends its base. By default, once the caller closes a served
// response's body, the URL and the header map of the request sturdy sent
// (its copy of the caller's) are reused for a later attempt, as
// net/http.RoundTripper's contract allows: "Callers should not mutate or
// reuse the request until the Response's Body has been closed." That
// saves about 540 bytes of garbage a call when the endpoint has headers of
// its own. Use it with a base that breaks the contract, one that keeps
// reading a request after its response body was closed (a logger that
// reads it later on another goroutine, say).
func WithoutRequestReuse() Option {
	return optionFunc(func(c *config) { c.noReuse = true })
}

// WithoutStreamTerminator turns off the check that a text/event-stream
// response ends with `data: [DONE]`, for server-sent-event APIs other than
// OpenAI's.
func WithoutStreamTerminator() Option {
	return optionFunc(func(c *config) { c.noTerm = true })
}

// GroupKey returns the model a request names, for a Router to pick its
// group; body is the request's body, read whole (nil when it has none).
type GroupKey func(req *http.Request, body []byte) string

// WithGroupKey makes a Router pick a request's group by f instead of the
// JSON body's top-level "model" (for other body formats, or a model named
// in a header or the path). A Transport ignores it.
func WithGroupKey(f GroupKey) Option {
	return optionFunc(func(c *config) { c.groupKey = f })
}
