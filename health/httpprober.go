package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sturdyai/sturdy"
)

// HTTPProber probes an endpoint with GET Endpoint.Address + Path and
// expects a 2xx answer, as vLLM, TGI and Triton serve on /health (or
// /v2/health/ready). Hosted APIs without a health path should not be
// probed; passive detection covers them.
type HTTPProber struct {
	// Client sends the probes. Nil means http.DefaultClient. Its Timeout,
	// if any, applies on top of the probe timeout.
	Client *http.Client
	// Path is joined to the endpoint's address with exactly one slash
	// between them. Empty means "/health".
	Path string
}

var _ Prober = HTTPProber{}

// maxDrain bounds how much of a probe's body is read so that its
// connection can be reused; a longer body is closed unread.
const maxDrain = 64 << 10

// Probe implements Prober.
func (p HTTPProber) Probe(ctx context.Context, ep sturdy.Endpoint) error {
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	path := p.Path
	if path == "" {
		path = "/health"
	}
	url := strings.TrimRight(ep.Address, "/") + "/" + strings.TrimLeft(path, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: probe %s: %w", ep.Name, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: probe %s: %w", ep.Name, err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health: probe %s: GET %s: status %s", ep.Name, path, resp.Status)
	}
	return nil
}
