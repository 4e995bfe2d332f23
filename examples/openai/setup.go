package main

import (
	"github.com/sturdyai/sturdy/examples/internal/cli"

	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

// The environment variables that select real endpoints.
const (
	envKey           = "OPENAI_API_KEY"
	envPrimaryURLs   = "STURDY_PRIMARY_URLS"
	envPrimaryModel  = "STURDY_PRIMARY_MODEL"
	envFallbackURL   = "STURDY_FALLBACK_URL"
	envFallbackModel = "STURDY_FALLBACK_MODEL"
	envFallbackKey   = "STURDY_FALLBACK_API_KEY"

	defaultPrimaryModel  = "gpt-4o"
	defaultFallbackModel = "gpt-4o-mini"
)

var envHelp = fmt.Sprintf(`  %-24s API key, sent to every endpoint as "Authorization: Bearer ..."
  %-24s comma-separated base URLs of the providers of the primary model,
  %-24s e.g. https://api.openai.com,https://my-proxy.example (a trailing /v1 is dropped)
  %-24s primary model (default %s)
  %-24s base URL of the fallback model's provider (default: the first primary URL)
  %-24s fallback model (default %s)
  %-24s API key of the fallback provider (default: %s)
`, envKey, envPrimaryURLs, "", envPrimaryModel, defaultPrimaryModel, envFallbackURL,
	envFallbackModel, defaultFallbackModel, envFallbackKey, envKey)

type env struct {
	key, fallbackKey            string
	primaryURLs                 []string
	primaryModel, fallbackModel string
	fallbackURL                 string
}

func readEnv() env {
	e := env{
		key:           os.Getenv(envKey),
		fallbackKey:   os.Getenv(envFallbackKey),
		primaryModel:  os.Getenv(envPrimaryModel),
		fallbackModel: os.Getenv(envFallbackModel),
		fallbackURL:   os.Getenv(envFallbackURL),
	}
	for u := range strings.SplitSeq(os.Getenv(envPrimaryURLs), ",") {
		if u = strings.TrimSpace(u); u != "" {
			e.primaryURLs = append(e.primaryURLs, u)
		}
	}
	if e.primaryModel == "" {
		e.primaryModel = defaultPrimaryModel
	}
	if e.fallbackModel == "" {
		e.fallbackModel = defaultFallbackModel
	}
	if e.fallbackKey == "" {
		e.fallbackKey = e.key
	}
	if e.fallbackURL == "" && len(e.primaryURLs) > 0 {
		e.fallbackURL = e.primaryURLs[0]
	}
	return e
}

// real reports whether the environment names real endpoints.
func (e env) real() bool { return e.key != "" && len(e.primaryURLs) > 0 }

// setup is what the program talks to: the tiers, the steps to show, and
// what to release at the end.
type setup struct {
	primary, fallback tier
	steps             []step
	// balancer, if not nil, replaces the default (P2C Peak-EWMA).
	balancer *balancer.Config
	// report, if not nil, says what the servers saw.
	report func() []string
	close  func()
}

// tier is one tier of the chain and the endpoints that serve it, as
// httpmw.WithTier takes them.
type tier struct {
	degrade.Tier
	endpoints []httpmw.Endpoint
}

type step struct {
	title  string
	before func() // changes the fake servers' faults, if any
	stream bool
}

func bearer(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

// baseURL checks an endpoint URL from the environment and drops a trailing
// /v1, which openai-go's request paths already carry.
func baseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", cli.UsageError{Err: fmt.Errorf("%q is not an http(s) base URL", raw)}
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	return u.String(), nil
}

func realSetup(e env) (*setup, error) {
	s := &setup{close: func() {}}
	s.primary = tier{Tier: degrade.Tier{Name: "primary", Model: e.primaryModel}}
	for i, raw := range e.primaryURLs {
		u, err := baseURL(raw)
		if err != nil {
			return nil, err
		}
		s.primary.endpoints = append(s.primary.endpoints,
			httpmw.URL(fmt.Sprintf("provider-%d", i+1), u, bearer(e.key)))
	}
	u, err := baseURL(e.fallbackURL)
	if err != nil {
		return nil, err
	}
	s.fallback = tier{Tier: degrade.Tier{Name: "fallback", Model: e.fallbackModel},
		endpoints: []httpmw.Endpoint{httpmw.URL("fallback", u, bearer(e.fallbackKey))}}
	s.steps = []step{
		{title: "a chat completion"},
		{title: "a streaming chat completion, printed token by token", stream: true},
	}
	return s, nil
}

// fakeSetup starts three fake OpenAI-compatible servers on 127.0.0.1, each
// requiring its own key, and steps that break them on purpose.
func fakeSetup() (*setup, error) {
	var servers []*sturdytest.Server
	s := &setup{close: func() {
		for _, srv := range servers {
			srv.Close()
		}
	}}
	start := func(name, model string) (*sturdytest.Server, httpmw.Endpoint, error) {
		key := "sk-fake-" + name
		srv, err := sturdytest.StartLLM(sturdytest.Config{
			Name:           name,
			Models:         []string{model},
			RequiredAPIKey: key,
			Latency:        sturdytest.Latency{Fixed: 20 * time.Millisecond},
			ChunkDelay:     30 * time.Millisecond,
		})
		if err != nil {
			return nil, httpmw.Endpoint{}, err
		}
		servers = append(servers, srv)
		return srv, httpmw.URL(name, srv.URL(), bearer(key)), nil
	}
	a, epA, err := start("provider-a", defaultPrimaryModel)
	if err != nil {
		s.close()
		return nil, err
	}
	b, epB, err := start("provider-b", defaultPrimaryModel)
	if err != nil {
		s.close()
		return nil, err
	}
	fb, epF, err := start("fallback", defaultFallbackModel)
	if err != nil {
		s.close()
		return nil, err
	}
	s.primary = tier{Tier: degrade.Tier{Name: "primary", Model: defaultPrimaryModel}, endpoints: []httpmw.Endpoint{epA, epB}}
	s.fallback = tier{Tier: degrade.Tier{Name: "fallback", Model: defaultFallbackModel}, endpoints: []httpmw.Endpoint{epF}}

	// Round-robin from the first endpoint, so that the first call goes to
	// provider-a and every run prints the same story. Leave the default
	// (P2C Peak-EWMA) in real programs.
	s.balancer = &balancer.Config{Policy: balancer.RoundRobin, Seed: 1}

	limited := sturdytest.RateLimit{Always: true, RetryAfter: 30 * time.Second}
	s.steps = []step{
		{title: "provider-a is down (connections reset): a chat completion fails over to provider-b",
			before: func() { a.SetDown(sturdytest.DownReset) }},
		{title: "provider-a is back: a streaming chat completion, printed token by token", stream: true,
			before: func() { a.SetDown(sturdytest.Up) }},
		{title: "both providers answer 429 (Retry-After 30s): the call falls back to " + defaultFallbackModel,
			before: func() { a.SetRateLimit(limited); b.SetRateLimit(limited) }},
		{title: "still limited: a streaming call goes straight to the fallback", stream: true},
	}
	s.report = func() []string {
		var lines []string
		for _, srv := range []*sturdytest.Server{a, b, fb} {
			lines = append(lines, fmt.Sprintf("%s saw keys %v", srv.Name(), srv.SeenCredentials()))
		}
		return lines
	}
	return s, nil
}

// describe lists a tier's endpoints.
func describe(t tier) string {
	var parts []string
	for _, ep := range t.endpoints {
		parts = append(parts, ep.Name+" "+ep.Address)
	}
	return strings.Join(parts, ", ")
}
