// Package pipeline builds, once for both adapters, everything a call
// goes through that is not protocol work: it validates the whole
// configuration (every error at once, each naming the option or field to
// fix), names the tiers, builds the health tracker, a balancer per tier,
// the fallback chain with each tier's failover, hedging, limits and
// throttle, telemetry, and the probes, and closes them. httpmw and grpcmw
// keep only what their protocol needs: turning URLs, headers, conns and
// metadata into endpoints, routing, classification, bodies and streams.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/telemetry"
	"github.com/sturdyai/sturdy/ratelimit"
)

// CallerCredentials are the header (HTTP, canonical form) and metadata
// (gRPC, lower case) keys that carry a caller's credentials. Both adapters
// drop them from every attempt unless the caller passes them through
// (WithCallerCredentials): with several providers, a key set for one would
// reach all of them.
var CallerCredentials = []string{"Authorization", "Api-Key", "X-Api-Key", "X-Goog-Api-Key"}

// Tier is one tier as an adapter's WithTier gave it: the tier and its
// endpoints, reduced to what the pipeline needs of them.
type Tier struct {
	degrade.Tier
	Endpoints []sturdy.Endpoint
}

// Config is what the options both adapters share set. Its zero value,
// with tiers added, is the default configuration.
type Config struct {
	Tiers    []Tier
	Failover failover.Config
	Hedge    *hedge.Config
	Health   health.Config
	Probes   *health.ProbeConfig
	Limiter  ratelimit.Config
	// EndpointLimits are the endpoints' own request limits (a provider
	// key's quota), by endpoint name, applied where an endpoint is picked.
	EndpointLimits map[string]ratelimit.Limit
	Throttle       *ratelimit.ThrottleConfig
	Balancer       balancer.Config
	// Affinity is WithAffinity's: it turns PrefixAffinity on for every
	// tier, with these settings.
	Affinity          *balancer.Affinity
	MaxWait           time.Duration
	TracerProvider    trace.TracerProvider
	MeterProvider     metric.MeterProvider
	CallerCredentials bool
	// NoAttemptHistograms is WithoutAttemptHistograms.
	NoAttemptHistograms bool
	// LoadReports is WithLoadReports: read the servers' load reports
	// into Outcome.Load (and, over HTTP, ask for them).
	LoadReports bool
	// AttemptSpanKind is the kind of attempt spans; zero means client.
	// An adapter sets it to internal when its transport already makes a
	// client span per request (see telemetry.Config.AttemptSpanKind).
	AttemptSpanKind trace.SpanKind
	OnAttempt       func(sturdy.Attempt)
	OnFallback      func(sturdy.Fallback)
	OnStateChange   func(health.StateChange)

	// QuotaKeys are the endpoints' QuotaKeys, by endpoint name, for those
	// that set one: endpoints with the same key are paced as one.
	QuotaKeys map[string]string

	// Errs are problems the options found as they were applied, and the
	// adapter's own (URLs, conns); Build reports them with the rest.
	Errs []error
}

// Protocol is what an adapter tells Build about itself.
type Protocol struct {
	Op    string // the adapter's name, the prefix of its errors: "httpmw"
	Scope string // its OpenTelemetry instrumentation scope
	// NoGenAI says the adapter records no GenAI metrics (grpcmw cannot
	// read a model's usage from messages it does not know), so their
	// instruments are not registered.
	NoGenAI bool
}

// Pipeline is what Build made. Its fields are read-only.
type Pipeline struct {
	Chain     *chain.Chain
	Tracker   *health.Tracker
	Tel       *telemetry.Telemetry
	Balancers []*balancer.Balancer // by tier
	TierNames []string
	// Affinity is the balancers' Config.Affinity when their policy is
	// PrefixAffinity (WithAffinity, or WithBalancer's Policy), nil
	// otherwise: the adapter then finds each call's key as it says.
	Affinity *balancer.Affinity

	probes     *health.ProbeConfig
	endpoints  []sturdy.Endpoint
	stopProbes context.CancelFunc
	probesDone chan struct{}
}

// TierName is how an adapter's errors name tier i.
func TierName(i int, name string) string {
	return fmt.Sprintf("tier %q (WithTier #%d)", name, i+1)
}

func names(op string) chain.Names {
	return chain.Names{
		Op: op, Tiers: "WithTier", Tier: TierName, Failover: "WithFailover", Hedge: "WithHedge",
		Limiter: "WithLimiter", Throttle: "WithThrottle", MaxWait: "WithMaxWait",
	}
}

// Build validates cfg and builds the pipeline. It returns every problem
// at once, before anything is started. It starts no goroutine: the probes
// start with StartProbes.
func Build(cfg *Config, p Protocol) (_ *Pipeline, err error) {
	errs := append([]error(nil), cfg.Errs...)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(p.Op+": "+format, args...)) }

	cc := &chain.Config{
		Failover: cfg.Failover, Hedge: cfg.Hedge, Limiter: cfg.Limiter, EndpointLimits: cfg.EndpointLimits, QuotaKeys: cfg.QuotaKeys, Peers: peers(cfg.Tiers), Throttle: cfg.Throttle,
		MaxWait: cfg.MaxWait, Names: names(p.Op), Hooks: new(attempt.Hooks),
	}
	cc.Tiers, errs = tiers(cfg, p.Op, errs)
	errs = append(errs, chain.Validate(cc)...)
	if a := cfg.Affinity; a != nil {
		switch {
		case cfg.Balancer.Policy != balancer.P2CPeakEWMA && cfg.Balancer.Policy != balancer.PrefixAffinity:
			bad("WithAffinity turns on the PrefixAffinity policy, but WithBalancer sets Policy %v; leave WithBalancer's Policy unset", cfg.Balancer.Policy)
		case cfg.Balancer.Affinity != (balancer.Affinity{}):
			bad("WithBalancer: Config.Affinity is set as well as WithAffinity; give one of them")
		default:
			if _, err := balancer.New(balancer.Config{Policy: balancer.PrefixAffinity, Affinity: *a}); err != nil {
				bad("WithAffinity: %w", err)
				break
			}
			cfg.Balancer.Policy, cfg.Balancer.Affinity = balancer.PrefixAffinity, *a
		}
	}
	if cfg.Balancer.Endpoints != nil || cfg.Balancer.Health != nil {
		bad("WithBalancer: leave Config.Endpoints and Config.Health unset; the tiers' endpoints and WithHealth fill them")
	} else if _, err := balancer.New(cfg.Balancer); err != nil {
		bad("WithBalancer: %w", err) // checked alone, so that it is reported with the rest
	}
	if cfg.Probes != nil {
		if err := cfg.Probes.Validate(); err != nil {
			bad("WithProbes: %w", err)
		}
	}

	pl := &Pipeline{probes: cfg.Probes}
	if cfg.Balancer.Policy == balancer.PrefixAffinity {
		a := cfg.Balancer.Affinity
		pl.Affinity = &a
	}
	var tel *telemetry.Telemetry // set below, before any call can run
	if pl.Tracker, err = health.New(withStateHooks(cfg, &tel)); err != nil {
		bad("WithHealth: %w", err)
	}
	if len(errs) == 0 {
		for i := range cc.Tiers {
			bcfg := cfg.Balancer
			bcfg.Endpoints, bcfg.Health = cfg.Tiers[i].Endpoints, pl.Tracker
			b, err := balancer.New(bcfg)
			if err != nil {
				bad("WithBalancer: %w", err)
				break
			}
			pl.Balancers = append(pl.Balancers, b)
			cc.Tiers[i].Picker = b
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	userFallback := cfg.OnFallback
	cc.OnFallback = func(from, to int, r sturdy.FallbackReason) {
		tel.OnFallback(from, to, r)
		if userFallback != nil {
			userFallback(sturdy.Fallback{From: pl.TierNames[from], To: pl.TierNames[to], Reason: r})
		}
	}
	if pl.Chain, err = chain.New(cc); err != nil {
		return nil, err
	}
	tiers := make([]telemetry.Tier, pl.Chain.Len())
	for i := range tiers {
		name := pl.Chain.Tier(i).Name
		pl.TierNames = append(pl.TierNames, name)
		eps := make([]string, len(cfg.Tiers[i].Endpoints))
		for j, ep := range cfg.Tiers[i].Endpoints {
			eps[j] = ep.Name
		}
		pl.endpoints = append(pl.endpoints, cfg.Tiers[i].Endpoints...)
		r, h := pl.Chain.TierPolicies(i)
		tiers[i] = telemetry.Tier{Name: name, Endpoints: eps, Retry: r, Hedge: h}
	}
	if tel, err = telemetry.New(telemetry.Config{
		Scope: p.Scope, TracerProvider: cfg.TracerProvider, MeterProvider: cfg.MeterProvider,
		Tiers: tiers, Health: pl.Tracker, NoGenAI: p.NoGenAI,
		NoAttemptHistograms: cfg.NoAttemptHistograms, AttemptSpanKind: cfg.AttemptSpanKind,
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Op, err)
	}
	pl.Tel = tel
	// The chain's attempt loops hold this pointer: filling it now, before
	// Build returns, is before any call.
	*cc.Hooks = *chain.WithOnAttempt(tel.Hooks(), cfg.OnAttempt)
	return pl, nil
}

// StartProbes starts the active health probes WithProbes configured, if
// any, with prober, of every endpoint but those skip names (nil: none);
// Close stops them.
func (p *Pipeline) StartProbes(prober health.Prober, skip func(name string) bool) {
	if p.probes == nil || p.stopProbes != nil {
		return
	}
	var eps []sturdy.Endpoint
	for _, ep := range p.endpoints {
		if skip == nil || !skip(ep.Name) {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopProbes, p.probesDone = cancel, make(chan struct{})
	cfg := *p.probes
	go func() {
		defer close(p.probesDone)
		_ = p.Tracker.RunProbes(ctx, prober, eps, cfg)
	}()
}

// Close stops the probes, waits for them, and stops the observable
// metrics. It is safe to call more than once.
func (p *Pipeline) Close() error {
	if p.stopProbes != nil {
		p.stopProbes()
		<-p.probesDone
		p.stopProbes = nil
	}
	return p.Tel.Close()
}

// peers returns the names of each tier's endpoints (chain.Config.Peers).
func peers(tiers []Tier) [][]string {
	out := make([][]string, len(tiers))
	for i, t := range tiers {
		for _, ep := range t.Endpoints {
			out[i] = append(out[i], ep.Name)
		}
	}
	return out
}

// tiers checks what chain.Validate does not (endpoints, Pickers) and
// returns the tiers as the chain takes them, with errs grown by the
// problems found.
func tiers(cfg *Config, op string, errs []error) ([]chain.TierConfig, []error) {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(op+": "+format, args...)) }
	var out []chain.TierConfig
	seen := map[string]string{}
	for i, t := range cfg.Tiers {
		if t.Name == "" {
			t.Name = chain.DefaultTierName(i)
		}
		at := TierName(i, t.Name)
		if t.Picker != nil {
			bad("%s: Picker is set; leave it nil, the adapter balances over the tier's endpoints (WithBalancer)", at)
		}
		if len(t.Endpoints) == 0 {
			bad("%s has no endpoints; give it at least one", at)
		}
		switch first := cfg.Tiers[0].Model; {
		case i > 0 && t.Model == "" && first != "" && !t.SameModel:
			bad("%s has no Model while %s serves %q: its requests would go out naming the primary's model; set Model, or SameModel if it serves that model too", at, TierName(0, cmp.Or(cfg.Tiers[0].Name, chain.DefaultTierName(0))), first)
		case t.SameModel && (i == 0 || t.Model != ""):
			bad("%s: SameModel is for a later tier without Model", at)
		}
		for j, ep := range t.Endpoints {
			switch {
			case ep.Name == "":
				bad("%s: endpoint #%d has no Name; every endpoint needs a unique name", at, j+1)
			case seen[ep.Name] != "":
				bad("endpoint name %q is used twice (%s and %s); endpoint names must be unique across tiers", ep.Name, seen[ep.Name], at)
			case ep.Weight < 0:
				bad("endpoint %q: Weight is %d; it must not be negative", ep.Name, ep.Weight)
			}
			if ep.Name != "" && seen[ep.Name] == "" {
				seen[ep.Name] = at
			}
		}
		out = append(out, chain.TierConfig(t.Tier))
	}
	return out, errs
}

// withStateHooks is WithHealth's config with its OnStateChange calling,
// in order, the telemetry (*tel, set before any call), the config's own
// hook and WithOnStateChange's.
func withStateHooks(cfg *Config, tel **telemetry.Telemetry) health.Config {
	hcfg := cfg.Health
	own, user := hcfg.OnStateChange, cfg.OnStateChange
	hcfg.OnStateChange = func(c health.StateChange) {
		(*tel).OnStateChange(c)
		if own != nil {
			own(c)
		}
		if user != nil {
			user(c)
		}
	}
	return hcfg
}
