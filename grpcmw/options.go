package grpcmw

import (
	"errors"
	"fmt"
	"time"

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

type tierConfig struct {
	tier degrade.Tier
	eps  []Endpoint
}

type config struct {
	tiers       []tierConfig
	dialOpts    []grpc.DialOption
	retry       *failover.Policy
	retrySet    bool
	hedge       *hedge.Policy
	maxWait     time.Duration
	balancer    balancer.Config
	tracker     *health.Tracker
	probe       *health.ProbeConfig
	probeSvc    string
	codes       map[codes.Code]sturdy.Class
	tooLarge    func(*status.Status) bool
	rewrite     Rewrite
	replayMsgs  int
	replayBytes int
	estimate    func(method string, req any) int64
	usage       func(method string, reply any) int64
	onFallback  func(degrade.Fallback)
	passCreds   bool
	telemetry   telemetryConfig
	errs        []error
}

// Rewrite returns the request to send to tier (for example, a copy of req
// with its model-name field set to tier.Model). It must not modify req:
// earlier tiers, hedges and retries may still be using it; return req
// itself to send it unchanged. For streams it is called for every message
// the caller sends (a hook error fails that SendMsg, or the attempt
// replaying it, with INVALID_ARGUMENT). For a unary call it is called once
// per call and tier (twice at most, when two hedges reach a tier at once);
// an error ends the call with that error (as Fatal).
type Rewrite func(tier degrade.Tier, method string, req any) (any, error)

// WithTier adds a tier to the fallback chain: tiers are tried in the
// order they are given, the first being the primary. tier.Picker must be
// nil (grpcmw balances over eps); every other field of degrade.Tier
// (Model, Limiter, Timeout, Retry, Hedge, ...) works as in degrade. At
// least one tier with at least one endpoint is required.
func WithTier(tier degrade.Tier, eps ...Endpoint) Option {
	return optionFunc(func(c *config) {
		c.tiers = append(c.tiers, tierConfig{tier: tier, eps: append([]Endpoint(nil), eps...)})
	})
}

// WithEndpoints is WithTier for a single, unnamed tier ("primary").
func WithEndpoints(eps ...Endpoint) Option {
	return WithTier(degrade.Tier{Name: "primary"}, eps...)
}

// WithCallerCredentials keeps the caller's own "authorization",
// "api-key", "x-api-key" and "x-goog-api-key" metadata on every attempt. By default they are
// dropped, as httpmw drops the caller's credential headers: with several
// providers, a key the caller set for one would reach all of them. Give
// each endpoint its credential in Endpoint.Metadata instead. Per-RPC
// credentials configured on a conn (grpc.WithPerRPCCredentials) are the
// conn's own and are not affected.
func WithCallerCredentials() Option {
	return optionFunc(func(c *config) { c.passCreds = true })
}

// WithDialOptions are the options grpcmw dials Target endpoints with
// (transport credentials are required, as for grpc.NewClient). grpcmw adds
// grpc.WithDisableRetry, since grpcmw does the retrying.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(c *config) { c.dialOpts = append(c.dialOpts, opts...) })
}

// WithRetry sets the failover policy of every tier that has none of its
// own. The default is failover.New(failover.Config{}) (3 attempts, 10%
// retry budget); nil turns retries off.
func WithRetry(p *failover.Policy) Option {
	return optionFunc(func(c *config) { c.retry, c.retrySet = p, true })
}

// WithHedge sets the hedging policy of unary calls in every tier that has
// none of its own. Streams are never hedged. The default is nil: no
// hedging.
func WithHedge(p *hedge.Policy) Option {
	return optionFunc(func(c *config) { c.hedge = p })
}

// WithMaxWait is degrade.Config.MaxWait: how long a call may wait for a
// tier's limiter when every tier refuses it. The default is 0 (fail at
// once with RESOURCE_EXHAUSTED).
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxWait = d })
}

// WithBalancer configures the balancer of every tier (policy, decay,
// panic threshold, seed). cfg.Endpoints and cfg.Health must be unset:
// grpcmw fills them. The default is the zero Config: P2C Peak-EWMA.
func WithBalancer(cfg balancer.Config) Option {
	return optionFunc(func(c *config) {
		if cfg.Endpoints != nil || cfg.Health != nil {
			c.errs = append(c.errs, errors.New("grpcmw: WithBalancer: leave Config.Endpoints and Config.Health unset; use WithTier and WithHealth"))
		}
		c.balancer = cfg
	})
}

// WithHealth makes the Client report outcomes to t and take its endpoints
// out of rotation as t decides. The default is a tracker built with
// health.New(health.Config{}) (Envoy-style outlier detection), whose
// ejections grpcmw counts in sturdy.ejections; with a tracker of your own,
// ejections are not counted unless you wire its OnStateChange yourself.
// Endpoint names are the member names.
func WithHealth(t *health.Tracker) Option {
	return optionFunc(func(c *config) {
		if t == nil {
			c.errs = append(c.errs, errors.New("grpcmw: WithHealth(nil); omit the option for the default tracker"))
		}
		c.tracker = t
	})
}

// WithHealthCheck probes every endpoint with the standard grpc.health.v1
// Health/Check RPC for service ("" asks about the server as a whole), as
// cfg says (interval, jitter, timeout), until Client.Close. A server that
// does not implement the Health service (UNIMPLEMENTED) counts as healthy,
// as grpc-go's own client health checking does. The default is no
// probing: passive detection only.
func WithHealthCheck(service string, cfg health.ProbeConfig) Option {
	return optionFunc(func(c *config) { c.probe, c.probeSvc = &cfg, service })
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
// and degrade moves the call to a tier with a larger window. The default
// is none: INVALID_ARGUMENT is Fatal.
func WithTooLarge(f func(*status.Status) bool) Option {
	return optionFunc(func(c *config) { c.tooLarge = f })
}

// WithRewrite sets the hook that adapts a request to the tier it is sent
// to (see Rewrite). The default sends every tier the caller's request.
func WithRewrite(f Rewrite) Option {
	return optionFunc(func(c *config) { c.rewrite = f })
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

// WithOnFallback is called whenever a call leaves a tier for a later one
// (degrade.Config.OnFallback); it runs on the call's goroutine and must be
// quick.
func WithOnFallback(f func(degrade.Fallback)) Option {
	return optionFunc(func(c *config) { c.onFallback = f })
}

const (
	defaultReplayMsgs  = 16
	defaultReplayBytes = 4 << 20
)

func newConfig(opts []Option) (*config, error) {
	c := &config{replayMsgs: defaultReplayMsgs, replayBytes: defaultReplayBytes}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	errs := c.errs
	if len(c.tiers) == 0 {
		errs = append(errs, errors.New("grpcmw: no endpoints; give at least one with WithEndpoints or WithTier"))
	}
	seen := map[string]string{}
	for i, t := range c.tiers {
		name := t.tier.Name
		if name == "" {
			name = fmt.Sprintf("tier%d", i)
		}
		if t.tier.Picker != nil {
			errs = append(errs, fmt.Errorf("grpcmw: tier %q has a Picker; leave it nil, grpcmw balances over the tier's endpoints", name))
		}
		if len(t.eps) == 0 {
			errs = append(errs, fmt.Errorf("grpcmw: tier %q has no endpoints", name))
		}
		for j, ep := range t.eps {
			switch {
			case ep.Name == "":
				errs = append(errs, fmt.Errorf("grpcmw: tier %q endpoint %d has no Name; every endpoint needs a unique name", name, j))
			case seen[ep.Name] != "":
				errs = append(errs, fmt.Errorf("grpcmw: endpoint name %q is used twice (tiers %q and %q); names must be unique across tiers", ep.Name, seen[ep.Name], name))
			case ep.Conn == nil && ep.Address == "":
				errs = append(errs, fmt.Errorf("grpcmw: endpoint %q has neither Conn nor Address; give a conn (Conn) or a target to dial (Target)", ep.Name))
			}
			if ep.Name != "" && seen[ep.Name] == "" {
				seen[ep.Name] = name
			}
		}
	}
	if c.maxWait < 0 {
		errs = append(errs, fmt.Errorf("grpcmw: WithMaxWait(%v): it must not be negative", c.maxWait))
	}
	if c.replayMsgs >= 0 && c.replayBytes < 0 {
		errs = append(errs, fmt.Errorf("grpcmw: WithStreamReplay bytes %d: it must not be negative", c.replayBytes))
	}
	for code := range c.codes {
		if code > codes.Unauthenticated {
			errs = append(errs, fmt.Errorf("grpcmw: WithCodeClass(%v): not a gRPC status code", code))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}
