// Package fleet describes a fleet of model servers declaratively — model
// groups, their tiers, endpoints, limits, policies and probes — as a plain
// struct with JSON and YAML tags, and builds an httpmw.Router from it.
//
// The library reads JSON (Parse); for YAML, decode into Config with the
// YAML package of your choice (examples/fleet uses go.yaml.in/yaml/v3): the
// yaml tags name the same keys, and Duration and Secret decode from
// strings through encoding.TextUnmarshaler.
//
// Secrets never appear in the file: a header or query value (and an
// endpoint's URL) may reference environment variables as ${NAME},
// expanded when the Router is built. A variable that is not set is an
// error naming the field and the variable; no error or String method ever
// prints a header or query value.
package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Config is a fleet: its model groups and the policies they share.
type Config struct {
	Groups []Group `json:"groups" yaml:"groups"`
	// Failover, Hedge, Health and Probes are shared by every group's
	// tiers; nil means sturdy's defaults (no hedging, no probes).
	Failover *Failover `json:"failover,omitempty" yaml:"failover,omitempty"`
	Hedge    *Hedge    `json:"hedge,omitempty" yaml:"hedge,omitempty"`
	Health   *Health   `json:"health,omitempty" yaml:"health,omitempty"`
	Probes   *Probes   `json:"probes,omitempty" yaml:"probes,omitempty"`
	// Balancer is the balancing policy, by its name in balancer.Policy:
	// "p2c_peak_ewma" (the default), "round_robin", "weighted_round_robin"
	// or "least_outstanding".
	Balancer string `json:"balancer,omitempty" yaml:"balancer,omitempty"`
	// TTFBTimeout bounds the wait for a stream's first byte
	// (httpmw.WithTTFBTimeout).
	TTFBTimeout Duration `json:"ttfb_timeout,omitempty" yaml:"ttfb_timeout,omitempty"`
	// ResponseTimeout bounds the wait for a non-streaming call's answer
	// (httpmw.WithResponseTimeout).
	ResponseTimeout Duration `json:"response_timeout,omitempty" yaml:"response_timeout,omitempty"`
	// MaxBodyBuffer bounds the request bodies buffered for replay, in
	// bytes; zero means httpmw's default.
	MaxBodyBuffer int64 `json:"max_body_buffer,omitempty" yaml:"max_body_buffer,omitempty"`
}

// Group is httpmw.Group: the model callers ask for, its aliases and tiers.
type Group struct {
	Name    string   `json:"name" yaml:"name"`
	Aliases []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	Tiers   []Tier   `json:"tiers" yaml:"tiers"`
}

// Tier is degrade.Tier with its endpoints.
type Tier struct {
	Name          string     `json:"name,omitempty" yaml:"name,omitempty"`
	Model         string     `json:"model,omitempty" yaml:"model,omitempty"`
	SameModel     bool       `json:"same_model,omitempty" yaml:"same_model,omitempty"`
	Quality       float64    `json:"quality,omitempty" yaml:"quality,omitempty"`
	ContextWindow int        `json:"context_window,omitempty" yaml:"context_window,omitempty"`
	Timeout       Duration   `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	Limit         *Limit     `json:"limit,omitempty" yaml:"limit,omitempty"`
	Endpoints     []Endpoint `json:"endpoints" yaml:"endpoints"`
}

// Limit is ratelimit.Limit.
type Limit struct {
	RequestsPerSecond float64 `json:"requests_per_second,omitempty" yaml:"requests_per_second,omitempty"`
	Burst             int     `json:"burst,omitempty" yaml:"burst,omitempty"`
	TokensPerMinute   int64   `json:"tokens_per_minute,omitempty" yaml:"tokens_per_minute,omitempty"`
	TokenBurst        int64   `json:"token_burst,omitempty" yaml:"token_burst,omitempty"`
}

// Endpoint is httpmw.Endpoint, with its secrets as Secret values.
type Endpoint struct {
	Name string `json:"name" yaml:"name"`
	// URL is the base URL; it may reference environment variables as
	// ${NAME} too (a deployment's host), though it is not masked.
	URL string `json:"url" yaml:"url"`
	// Model is the endpoint's own name for the tier's model (an Azure
	// deployment, a vLLM served-model-name); empty means the tier's.
	Model     string            `json:"model,omitempty" yaml:"model,omitempty"`
	Weight    int               `json:"weight,omitempty" yaml:"weight,omitempty"`
	Provider  string            `json:"provider,omitempty" yaml:"provider,omitempty"`
	Headers   map[string]Secret `json:"headers,omitempty" yaml:"headers,omitempty"`
	Query     map[string]Secret `json:"query,omitempty" yaml:"query,omitempty"`
	ProbePath string            `json:"probe_path,omitempty" yaml:"probe_path,omitempty"`
	NoProbe   bool              `json:"no_probe,omitempty" yaml:"no_probe,omitempty"`
	// Limit is the endpoint's own request and token rates (a provider
	// key's quota).
	Limit *Limit `json:"limit,omitempty" yaml:"limit,omitempty"`
}

// Failover is the part of failover.Config a file usually sets.
type Failover struct {
	MaxAttempts              int      `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`
	AttemptTimeout           Duration `json:"attempt_timeout,omitempty" yaml:"attempt_timeout,omitempty"`
	MaxRetryAfterWait        Duration `json:"max_retry_after_wait,omitempty" yaml:"max_retry_after_wait,omitempty"`
	DisableSameEndpointRetry bool     `json:"disable_same_endpoint_retry,omitempty" yaml:"disable_same_endpoint_retry,omitempty"`
}

// Hedge is the part of hedge.Config a file usually sets: a fixed Delay,
// or the adaptive one when it is zero.
type Hedge struct {
	Delay     Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	MaxHedges int      `json:"max_hedges,omitempty" yaml:"max_hedges,omitempty"`
}

// Health is the part of health.Config a file usually sets.
type Health struct {
	ConsecutiveFailures int      `json:"consecutive_failures,omitempty" yaml:"consecutive_failures,omitempty"`
	BaseEjection        Duration `json:"base_ejection,omitempty" yaml:"base_ejection,omitempty"`
}

// Probes turns active probes on (health.ProbeConfig).
type Probes struct {
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	Timeout  Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Path is the default probe path (httpmw.WithProbePath).
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
}

// Duration is a time.Duration written as "10s", "250ms" or "1m30s".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("fleet: duration %q: give a Go duration such as \"10s\" or \"250ms\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Secret is a header or query value that may reference environment
// variables as ${NAME}. It prints as "[secret]" whatever it holds.
type Secret string

// String masks the value.
func (Secret) String() string { return "[secret]" }

// GoString masks the value.
func (Secret) GoString() string { return "[secret]" }

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand returns s with its ${NAME} references replaced by the
// environment's values, and the names that are not set.
func (s Secret) expand(lookup func(string) (string, bool)) (string, []string) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(string(s), func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	return out, missing
}

// Parse decodes a JSON fleet description, refusing unknown keys (a typo
// must not silently drop a setting).
func Parse(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return &c, nil
}

// Router builds an httpmw.Router from c over base (nil means
// http.DefaultTransport), reading secrets from the environment. It
// returns every problem at once; extra options (tracer and meter
// providers, hooks) apply to every group after c's own.
func (c *Config) Router(base http.RoundTripper, extra ...httpmw.Option) (*httpmw.Router, error) {
	return c.router(base, os.LookupEnv, extra)
}

func (c *Config) router(base http.RoundTripper, lookup func(string) (string, bool), extra []httpmw.Option) (*httpmw.Router, error) {
	var errs []error
	shared, err := c.shared()
	if err != nil {
		errs = append(errs, err)
	}
	shared = append(shared, extra...)
	var groups []httpmw.Group
	for gi, g := range c.Groups {
		hg := httpmw.Group{Name: g.Name, Aliases: g.Aliases}
		for ti, t := range g.Tiers {
			tier := degrade.Tier{Name: t.Name, Model: t.Model, SameModel: t.SameModel, Quality: t.Quality,
				ContextWindow: t.ContextWindow, Timeout: time.Duration(t.Timeout)}
			if t.Limit != nil {
				l := t.Limit
				tier.Limit = ratelimit.Limit{RequestsPerSecond: l.RequestsPerSecond, Burst: l.Burst, TokensPerMinute: l.TokensPerMinute, TokenBurst: l.TokenBurst}
			}
			var eps []httpmw.Endpoint
			for ei, e := range t.Endpoints {
				at := fmt.Sprintf("groups[%d] (%q).tiers[%d].endpoints[%d] (%q)", gi, g.Name, ti, ei, e.Name)
				ep, epErrs := e.endpoint(at, lookup)
				errs = append(errs, epErrs...)
				eps = append(eps, ep)
			}
			hg.Options = append(hg.Options, httpmw.WithTier(tier, eps...))
		}
		groups = append(groups, hg)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r, err := httpmw.NewRouter(base, groups, shared...)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return r, nil
}

func (e Endpoint) endpoint(at string, lookup func(string) (string, bool)) (httpmw.Endpoint, []error) {
	var errs []error
	addr, missing := Secret(e.URL).expand(lookup)
	for _, name := range missing {
		errs = append(errs, fmt.Errorf("fleet: %s: url references ${%s}, which is not set in the environment", at, name))
	}
	ep := httpmw.Endpoint{
		Endpoint:  sturdy.Endpoint{Name: e.Name, Address: addr, Weight: e.Weight, Model: e.Model},
		Provider:  e.Provider,
		ProbePath: e.ProbePath,
		NoProbe:   e.NoProbe,
	}
	if l := e.Limit; l != nil {
		ep.Limit = ratelimit.Limit{RequestsPerSecond: l.RequestsPerSecond, Burst: l.Burst, TokensPerMinute: l.TokensPerMinute, TokenBurst: l.TokenBurst}
	}
	expand := func(kind, key string, s Secret) string {
		v, missing := s.expand(lookup)
		for _, name := range missing {
			errs = append(errs, fmt.Errorf("fleet: %s: %s %q references ${%s}, which is not set in the environment", at, kind, key, name))
		}
		return v
	}
	for k, s := range e.Headers {
		if ep.Header == nil {
			ep.Header = http.Header{}
		}
		ep.Header.Set(k, expand("header", k, s))
	}
	for k, s := range e.Query {
		if ep.Query == nil {
			ep.Query = url.Values{}
		}
		ep.Query.Set(k, expand("query", k, s))
	}
	return ep, errs
}

// shared turns c's policies into options for every group.
func (c *Config) shared() ([]httpmw.Option, error) {
	var opts []httpmw.Option
	if f := c.Failover; f != nil {
		opts = append(opts, httpmw.WithFailover(failover.Config{MaxAttempts: f.MaxAttempts, AttemptTimeout: time.Duration(f.AttemptTimeout),
			MaxRetryAfterWait: time.Duration(f.MaxRetryAfterWait), DisableSameEndpointRetry: f.DisableSameEndpointRetry}))
	}
	if h := c.Hedge; h != nil {
		opts = append(opts, httpmw.WithHedge(hedge.Config{Delay: time.Duration(h.Delay), MaxHedges: h.MaxHedges}))
	}
	if h := c.Health; h != nil {
		opts = append(opts, httpmw.WithHealth(health.Config{ConsecutiveFailures: h.ConsecutiveFailures, BaseEjection: time.Duration(h.BaseEjection)}))
	}
	if p := c.Probes; p != nil {
		opts = append(opts, httpmw.WithProbes(health.ProbeConfig{Interval: time.Duration(p.Interval), Timeout: time.Duration(p.Timeout)}))
		if p.Path != "" {
			opts = append(opts, httpmw.WithProbePath(p.Path))
		}
	}
	if c.TTFBTimeout != 0 {
		opts = append(opts, httpmw.WithTTFBTimeout(time.Duration(c.TTFBTimeout)))
	}
	if c.ResponseTimeout != 0 {
		opts = append(opts, httpmw.WithResponseTimeout(time.Duration(c.ResponseTimeout)))
	}
	if c.MaxBodyBuffer != 0 {
		opts = append(opts, httpmw.WithMaxBodyBuffer(c.MaxBodyBuffer))
	}
	if c.Balancer == "" {
		return opts, nil
	}
	for _, p := range []balancer.Policy{balancer.P2CPeakEWMA, balancer.RoundRobin, balancer.WeightedRoundRobin, balancer.LeastOutstanding} {
		if p.String() == c.Balancer {
			return append(opts, httpmw.WithBalancer(balancer.Config{Policy: p})), nil
		}
	}
	return opts, fmt.Errorf("fleet: balancer %q: give p2c_peak_ewma, round_robin, weighted_round_robin or least_outstanding", c.Balancer)
}
