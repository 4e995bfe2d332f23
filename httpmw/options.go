package httpmw

import (
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/ratelimit"
)

// DefaultMaxBodyBuffer is how much of a request body without GetBody the
// Transport buffers to replay it, when WithMaxBodyBuffer is not given.
const DefaultMaxBodyBuffer = 8 << 20

// Endpoint is one server of a tier.
type Endpoint struct {
	// Name identifies the endpoint in errors, spans, metrics, health and
	// the Sturdy-Endpoint response header. Required, unique across the
	// Transport, low-cardinality.
	Name string
	// URL is the endpoint's base URL: scheme (http or https), host and an
	// optional base-path prefix, e.g. "https://api.openai.com" or
	// "https://x.openai.azure.com/openai". A request's path is appended to
	// the prefix (see the package doc). No query, fragment or user info:
	// put credentials in Header.
	URL string
	// Weight is the endpoint's share for weighted balancing. Zero means 1;
	// negative is an error.
	Weight int
	// Header is sent on every request to this endpoint and only to it,
	// replacing the caller's credentials: put the endpoint's
	// "Authorization: Bearer ..." or "api-key" here. Nil means none.
	Header http.Header
}

// Tier is one model of the fallback chain: tier 0 is the primary, later
// tiers are fallbacks (see degrade).
type Tier struct {
	// Name identifies the tier in errors, spans, metrics and the
	// Sturdy-Tier response header. Empty means "tier<i>". Unique.
	Name string
	// Model is the model the tier serves. When a fallback tier (index > 0)
	// serves a call, the top-level "model" of the request's JSON body is
	// rewritten to it. Empty means no rewrite. Tier 0 never rewrites: the
	// caller's model is sent as the caller wrote it.
	Model string
	// Quality is the tier's answer quality in [0, 1] for
	// degrade.Stats.ExpectedQuality. Zero means 1.
	Quality float64
	// ContextWindow is the tier's context window in tokens: a too-large
	// answer moves a call to a later tier with a larger one, and a request
	// whose body is clearly larger (over 5 bytes a token) skips the tier
	// without spending an attempt on it. Zero means unknown.
	ContextWindow int
	// Limit is the tier's client-side admission: requests per second and
	// tokens per minute. The zero Limit admits everything (server
	// cooldowns from 429 Retry-After still apply).
	Limit ratelimit.Limit
	// Timeout is the tier's latency objective: a call this tier has not
	// answered (headers and first body byte) within it moves to the next
	// tier. Zero means none.
	Timeout time.Duration
	// Endpoints serve the tier. At least one.
	Endpoints []Endpoint
}

// Probes configures active health probes (WithProbes).
type Probes struct {
	// Interval between two probes of one endpoint. Zero means 10s.
	Interval time.Duration
	// Timeout bounds one probe. Zero means 2s.
	Timeout time.Duration
	// Jitter spreads probes: each wait is Interval × [1−Jitter, 1+Jitter].
	// Zero means 0.1; negative means none.
	Jitter float64
	// Path is appended to the endpoint's URL (with exactly one slash
	// between them) for a GET that must answer 2xx. Empty means
	// "/health", as vLLM and TGI serve it.
	Path string
}

// Classifier turns an attempt's response or transport error into its
// outcome. Call Classify inside it for the default rules. It may read the
// response body only if it puts back an equivalent one.
type Classifier func(resp *http.Response, err error) (o Outcome)

// ModelRewriter rewrites a request body for a fallback tier's model, for
// bodies that are not OpenAI-style JSON. r is the caller's request (read
// it, never change it); body is the whole body. An error fails the
// attempt as Fatal, and the call with it.
type ModelRewriter func(r *http.Request, body []byte, model string) ([]byte, error)

// Option configures a Transport.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tiers       []Tier
	balancer    balancer.Config
	failover    failover.Config
	hedge       *hedge.Config
	health      health.Config
	probes      *Probes
	maxWait     time.Duration
	classifier  Classifier
	rewriter    ModelRewriter
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	maxBody     int64
	ttfb        time.Duration
	noTerm      bool
	passCreds   bool
	limiterBase ratelimit.Config
}

// WithTier adds a tier to the chain. Call it once per tier, primary first.
func WithTier(t Tier) Option {
	return optionFunc(func(c *config) { c.tiers = append(c.tiers, t) })
}

// WithBalancer sets the balancer of every tier: cfg.Policy (default
// P2C Peak-EWMA), PanicThreshold, Decay, DefaultRTT, Seed. Its Endpoints
// and Health are ignored: the Transport fills them per tier.
func WithBalancer(cfg balancer.Config) Option {
	return optionFunc(func(c *config) { c.balancer = cfg })
}

// WithFailover sets the failover policy; each tier gets its own Policy
// (and retry budget) built from cfg. Without it the failover defaults
// apply (3 attempts per tier, 10% retry budget).
func WithFailover(cfg failover.Config) Option {
	return optionFunc(func(c *config) { c.failover = cfg })
}

// WithHedge turns hedging on; each tier gets its own hedge.Policy built
// from cfg, since tiers' latencies differ. Without it there is no hedging.
func WithHedge(cfg hedge.Config) Option {
	return optionFunc(func(c *config) { h := cfg; c.hedge = &h })
}

// WithHealth sets passive health detection. cfg.OnStateChange, if set, is
// called besides the Transport's own telemetry.
func WithHealth(cfg health.Config) Option {
	return optionFunc(func(c *config) { c.health = cfg })
}

// WithProbes turns on active health probes of every endpoint: a GET of the
// endpoint's URL + p.Path with the endpoint's own headers. Close stops
// them.
func WithProbes(p Probes) Option {
	return optionFunc(func(c *config) { pp := p; c.probes = &pp })
}

// WithLimiter sets the rate limiter's settings other than the tiers'
// limits (which come from Tier.Limit, keyed by tier name): e.g. a shared
// Store for fleet-wide limits, or MaxKeys.
func WithLimiter(cfg ratelimit.Config) Option {
	return optionFunc(func(c *config) { c.limiterBase = cfg })
}

// WithMaxWait lets a call wait up to d for a tier's limiter when every
// tier refuses it (degrade.Config.MaxWait). Zero (the default) fails such
// a call at once.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxWait = d })
}

// WithClassifier replaces Classify, the default classification of
// responses and errors.
func WithClassifier(f Classifier) Option {
	return optionFunc(func(c *config) { c.classifier = f })
}

// WithModelRewriter replaces the default rewrite of the JSON "model" field
// for fallback tiers.
func WithModelRewriter(f ModelRewriter) Option {
	return optionFunc(func(c *config) { c.rewriter = f })
}

// WithTracerProvider sets the tracer provider. Default: otel's global.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the meter provider. Default: otel's global.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithMaxBodyBuffer sets how many bytes of a request body without GetBody
// are buffered to replay it (default DefaultMaxBodyBuffer). A longer body
// is sent once, never retried, hedged or rewritten.
func WithMaxBodyBuffer(n int64) Option {
	return optionFunc(func(c *config) { c.maxBody = n })
}

// WithTTFBTimeout fails over an attempt that has not delivered its
// response headers and first body byte within d (class Timeout). Zero (the
// default) means no time-to-first-byte timeout; the caller's deadline and
// failover's AttemptTimeout still apply.
func WithTTFBTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.ttfb = d })
}

// WithoutStreamTerminator turns off the check that a text/event-stream
// response ends with `data: [DONE]`, for server-sent-event APIs other than
// OpenAI's.
func WithoutStreamTerminator() Option {
	return optionFunc(func(c *config) { c.noTerm = true })
}

// WithCallerCredentials passes the caller's Authorization, Api-Key,
// X-Api-Key and X-Goog-Api-Key headers through to whichever endpoint
// serves the call (an endpoint's own Header still replaces them). Use it
// only when every endpoint is meant to receive the caller's key.
func WithCallerCredentials() Option {
	return optionFunc(func(c *config) { c.passCreds = true })
}
