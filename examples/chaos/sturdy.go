package main

import (
	"context"
	"net/http"
	"time"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
)

// sturdyClient is the same http.Client as the plain one, with sturdy's
// transport instead of round-robin and no retry loop of its own (the
// transport retries: httpmw's package doc, "No double retries").
type sturdyClient struct {
	hc *http.Client
	t  *httpmw.Transport
}

// newSturdyClient builds the transport over the fleet: tier 0 the primary
// replicas, tier 1 the fallback. Health ejection and probe intervals are
// scaled to the run, since the library's production defaults (30 s
// ejections, 10 s probes) are as long as the whole demo.
func newSturdyClient(base http.RoundTripper, f *fleet, d time.Duration) (*sturdyClient, error) {
	tiers := [2]degrade.Tier{
		{Name: "primary", Model: primaryModel, Quality: primaryQuality, ContextWindow: primaryContext},
		{Name: "fallback", Model: fallbackModel, Quality: fallbackQuality, ContextWindow: fallbackContext},
	}
	var eps [2][]httpmw.Endpoint
	for i, sp := range f.specs {
		eps[sp.Tier] = append(eps[sp.Tier], httpmw.URL(sp.Name, f.servers[i].URL(), nil))
	}
	ejection := min(max(d/10, 500*time.Millisecond), 30*time.Second)
	probe := min(max(d/25, 200*time.Millisecond), 10*time.Second)
	t, err := httpmw.NewTransport(base,
		httpmw.WithTier(tiers[0], eps[0]...),
		httpmw.WithTier(tiers[1], eps[1]...),
		httpmw.WithHealth(health.Config{
			BaseEjection: ejection,
			MaxEjection:  10 * ejection,
			Window:       min(max(d/5, time.Second), 10*time.Second),
		}),
		httpmw.WithProbes(health.ProbeConfig{Interval: probe, Timeout: probe}),
		httpmw.WithFailover(failover.Config{AttemptTimeout: time.Second}),
		httpmw.WithHedge(hedge.Config{}),
	)
	if err != nil {
		return nil, err
	}
	return &sturdyClient{hc: &http.Client{Transport: t}, t: t}, nil
}

func (s *sturdyClient) Call(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := newChatRequest(ctx, "http://primary.invalid", body)
	if err != nil {
		return nil, err
	}
	return s.hc.Do(req)
}

// Close stops the transport's probes.
func (s *sturdyClient) Close() error { return s.t.Close() }
