package grpcmw

import (
	"cmp"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/pipeline"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Endpoint is one gRPC server of a tier: a conn the caller dialed, or a
// target grpcmw dials (and closes in Client.Close).
type Endpoint struct {
	// Endpoint names the server (unique across every tier of a Client) and
	// carries its weight and labels. Address is the target grpcmw dials
	// when Conn is nil.
	sturdy.Endpoint
	// Conn carries the endpoint's calls; usually a *grpc.ClientConn the
	// caller dialed and closes. Nil means grpcmw dials Address with the
	// options of WithDialOptions.
	Conn grpc.ClientConnInterface
	// Metadata is added to the outgoing metadata of every attempt sent to
	// this endpoint, and of no other: per-endpoint credentials (an API key
	// meant for one provider never reaches another). Its keys replace the
	// caller's values of the same keys. Nil means none.
	Metadata metadata.MD
	// Limit is the endpoint's own request and token rates (a quota),
	// beside its tier's Limit: an endpoint over it is passed over for
	// another of its tier, then the call falls back. Tokens are charged
	// as for a tier: WithTokens' estimate, corrected to its usage for a
	// unary call (a stream's estimate stands). The zero Limit is none.
	Limit ratelimit.Limit
	// QuotaKey names the provider quota the endpoint draws on, when
	// several endpoints share one (deployments behind one API key):
	// endpoints with the same QuotaKey are paced as one, with one learned
	// rate, one rate their rate-limit metadata told, one cooldown and one
	// Limit (set it on one of them, or the same on each). They share it
	// within one Client (with a Router, within one group); a shared
	// Store in WithLimiter shares its buckets and cooldowns across them
	// and across processes, and a LearnStore (ratelimit/redisstore) its
	// learned rate too; a told token rate stays in each. Empty means the
	// endpoint is its own quota. It has the same meaning in httpmw.
	QuotaKey string
}

// Conn returns an Endpoint named name whose calls go over cc.
func Conn(name string, cc grpc.ClientConnInterface) Endpoint {
	return Endpoint{Endpoint: sturdy.Endpoint{Name: name}, Conn: cc}
}

// Target returns an Endpoint named name that grpcmw dials at target
// (grpc.NewClient syntax: "dns:///host:port", "127.0.0.1:9000", ...).
func Target(name, target string) Endpoint {
	return Endpoint{Endpoint: sturdy.Endpoint{Name: name, Address: target}}
}

// Option configures a Client.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	pipeline.Config
	eps         [][]Endpoint // by tier, as WithTier gave them
	dialOpts    []grpc.DialOption
	probeSvc    string
	codes       map[codes.Code]sturdy.Class
	tooLarge    func(*status.Status) bool
	rewrite     ModelRewrite
	replayMsgs  int
	replayBytes int
	estimate    func(method string, req any) int64
	usage       func(method string, reply any) int64
	keyHook     KeyFunc
}

// ModelRewrite returns the request to send to tier (for example, a copy
// of req with its model-name field set to tier.Model). It is called for
// every tier but the primary whose Model is set: the primary gets the
// caller's request as written. It must not modify req: earlier tiers,
// hedges and retries may still be using it; return req itself to send it
// unchanged. For streams it is called for every message the caller sends
// (a hook error fails that SendMsg, or the attempt replaying it, with
// INVALID_ARGUMENT). For a unary call it is called once per call and tier
// (twice at most, when two hedges reach a tier at once); an error ends
// the call with that error (as Fatal).
type ModelRewrite func(tier degrade.Tier, method string, req any) (any, error)

// The options below exist in httpmw too, with the same names, argument
// types and meanings; the internal pipeline applies them for both.

// WithTier adds a tier to the fallback chain, with its endpoints: tiers
// are tried in the order they are given, the first being the primary.
// tier.Picker must be nil (the Client balances over eps); every other
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
// each tier gets its own policy, since tiers' latencies differ. Only
// unary calls are hedged; streams never are. The default is no hedging.
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
// detection only. A probe is the standard grpc.health.v1 Health/Check RPC
// (see WithProbeService); a server that does not implement the Health
// service (UNIMPLEMENTED) counts as healthy, as grpc-go's own client health
// checking does.
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
// their defaults), so that calls with the same key go to the same replica
// while its load allows, and its prompt cache hits. WithBalancer's Policy
// must then be left unset (or PrefixAffinity) and its Config.Affinity
// unset; WithBalancer with Policy PrefixAffinity alone is WithAffinity
// with its Config.Affinity.
//
// The key is found once per call, before its first attempt, and every
// attempt and tier of the call routes by it: from WithAffinityKey's hook
// (gRPC messages have no one shape, so only a hook can read a prompt),
// else the outgoing metadata named by a.SessionHeader. A call with no
// key goes by P2C Peak-EWMA. a.BlockSize and a.SessionFromUser are
// httpmw's; grpcmw ignores them.
func WithAffinity(a balancer.Affinity) Option {
	return optionFunc(func(c *config) { c.Affinity = &a })
}

// WithAffinityKey sets the hook that finds a call's affinity key (see
// KeyFunc and WithAffinity, which it needs).
func WithAffinityKey(f KeyFunc) Option {
	return optionFunc(func(c *config) { c.keyHook = f })
}

// WithMaxWait lets a call wait up to d for a tier's limiter when every
// tier refuses it (degrade.Config.MaxWait). Zero (the default) fails such
// a call at once with RESOURCE_EXHAUSTED.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.MaxWait = d })
}

// WithModelRewrite sets the hook that adapts a request to the fallback
// tier it is sent to (see ModelRewrite). The default sends every tier the
// caller's request.
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
// ("authorization", "api-key", "x-api-key" and "x-goog-api-key"
// metadata) through to whichever endpoint serves the call; an endpoint's
// own Metadata still replaces them. By default they are dropped: with
// several providers, a key set for one would reach all of them. Per-RPC
// credentials configured on a conn (grpc.WithPerRPCCredentials) are the
// conn's own and are not affected.
func WithCallerCredentials() Option {
	return optionFunc(func(c *config) { c.CallerCredentials = true })
}

// WithOnAttempt calls f once for every attempt when it ends (a served
// stream's when it finishes): its endpoint, tier, number, kind (first,
// retry, hedge), outcome class and latency. f runs synchronously on the
// goroutine that ended the attempt: it must be quick and must not block
// (log, count; no I/O that can stall).
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

// The options below are gRPC's own.

// WithProbeService sets the service a grpc.health.v1 probe asks about.
// The default, "", asks about the server as a whole.
func WithProbeService(service string) Option {
	return optionFunc(func(c *config) { c.probeSvc = service })
}

// WithDialOptions are the options grpcmw dials Target endpoints with
// (transport credentials are required, as for grpc.NewClient). grpcmw adds
// grpc.WithDisableRetry, since grpcmw does the retrying.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(c *config) { c.dialOpts = append(c.dialOpts, opts...) })
}

// WithCodeClass makes status code classify as class, overriding the
// default table of the package doc; for example
// WithCodeClass(codes.Internal, sturdy.Fatal) stops retrying INTERNAL.
func WithCodeClass(code codes.Code, class sturdy.Class) Option {
	return optionFunc(func(c *config) {
		if c.codes == nil {
			c.codes = map[codes.Code]sturdy.Class{}
		}
		c.codes[code] = class
	})
}

// WithTooLarge reports whether an INVALID_ARGUMENT status says the request
// exceeds the model's context window; such attempts are classed TooLarge,
// and the call moves to a later tier whose window is larger or unknown.
// A message that names the window ("maximum context length is 4096
// tokens", and the other servers' wordings httpmw reads) teaches the
// chain that tier's window, as in httpmw. The default is none:
// INVALID_ARGUMENT is Fatal.
func WithTooLarge(f func(*status.Status) bool) Option {
	return optionFunc(func(c *config) { c.tooLarge = f })
}

// WithStreamReplay bounds what a client-streaming or bidirectional stream
// keeps of the messages it sent before its first response, so that a
// failover can replay them on another endpoint: at most msgs messages and
// bytes bytes (proto.Size; other messages count 0). A stream that sends
// more commits to its current endpoint and cannot fail over. The defaults
// are 16 messages and 4 MiB; msgs < 0 turns failover off for client- and
// bidi-streaming calls. Server-streaming calls always keep their one
// request.
func WithStreamReplay(msgs, bytes int) Option {
	return optionFunc(func(c *config) { c.replayMsgs, c.replayBytes = msgs, bytes })
}

// WithTokens sets how a call's token count is estimated before it goes
// out (charged to each tier's token limit) and read from its reply
// afterwards (correcting the charge; return a negative count when
// unknown). Either may be nil. The default charges nothing.
func WithTokens(estimate func(method string, req any) int64, usage func(method string, reply any) int64) Option {
	return optionFunc(func(c *config) { c.estimate, c.usage = estimate, usage })
}

const (
	defaultReplayMsgs  = 16
	defaultReplayBytes = 4 << 20
)

func newConfig(opts []Option) *config {
	c := &config{replayMsgs: defaultReplayMsgs, replayBytes: defaultReplayBytes}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	bad := func(format string, args ...any) { c.Errs = append(c.Errs, fmt.Errorf("grpcmw: "+format, args...)) }
	for i, eps := range c.eps {
		for _, ep := range eps {
			if ep.Name != "" && ep.Conn == nil && ep.Address == "" {
				bad("%s: endpoint %q has neither Conn nor Address; give a conn (Conn) or a target to dial (Target)",
					pipeline.TierName(i, cmp.Or(c.Tiers[i].Name, chain.DefaultTierName(i))), ep.Name)
			}
		}
	}
	c.Errs = append(c.Errs, checkAffinity(c)...)
	if c.replayMsgs >= 0 && c.replayBytes < 0 {
		bad("WithStreamReplay bytes %d: it must not be negative", c.replayBytes)
	}
	for code := range c.codes {
		if code > codes.Unauthenticated {
			bad("WithCodeClass(%v): not a gRPC status code", code)
		}
	}
	return c
}
