package httpmw

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/body"
)

// prober is a health.Prober that sends the endpoint's own headers, for
// servers whose health path wants a key (health.HTTPProber sends none).
type prober struct {
	t    *Transport
	path string
}

func (p *prober) Probe(ctx context.Context, se sturdy.Endpoint) error {
	ep := p.t.byName[se.Name]
	if ep == nil {
		return fmt.Errorf("httpmw: probe: unknown endpoint %q", se.Name)
	}
	path := cmp.Or(ep.probePath, p.path, "/health")
	u := ep.base + "/" + strings.TrimLeft(path, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("httpmw: probe of %s: %w", ep.name, err)
	}
	ep.setHeaders(req.Header)
	resp, err := p.t.base.RoundTrip(req)
	if err == nil && resp == nil {
		err = errNoResponse
	}
	if err != nil {
		if resp != nil {
			body.Drain(resp.Body, 0)
		}
		return fmt.Errorf("httpmw: probe of %s: %w", ep.name, err)
	}
	body.Drain(resp.Body, body.DrainLimit)
	if !probeUp(resp.StatusCode) {
		return fmt.Errorf("httpmw: probe of %s: status %d", ep.name, resp.StatusCode)
	}
	return nil
}

// probeUp reports whether a probe's answer says the server is up: any
// answer but a 5xx, 408 or 429. A 404 (no such path: OpenAI and Azure
// serve no /health) or a 401 or 403 (the path wants another credential)
// comes from a server that is up; ejecting it for that would take a
// healthy provider out for good.
func probeUp(code int) bool {
	return code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}
