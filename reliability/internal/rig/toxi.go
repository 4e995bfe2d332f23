package rig

import (
	"errors"

	"go.uber.org/goleak"
	"net/http"
	"net/http/httptest"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Toxi is an in-process toxiproxy: its API server (the real one, from
// github.com/Shopify/toxiproxy/v2) on a loopback port, and a client of
// that API. Every proxy it makes listens on 127.0.0.1.
type Toxi struct {
	srv    *toxiproxy.ApiServer
	api    *httptest.Server
	Client *toxiclient.Client
}

// StartToxi starts toxiproxy's API server in this process.
func StartToxi() *Toxi {
	// Some toxics log through zerolog's global logger, at trace level.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api := httptest.NewServer(srv.Routes()) // 127.0.0.1:<random>
	c := toxiclient.NewClient(api.URL)
	return &Toxi{srv: srv, api: api, Client: c}
}

// Proxy makes a proxy named name from a fresh 127.0.0.1 port to upstream
// (host:port) and returns it, enabled.
func (x *Toxi) Proxy(name, upstream string) (*Proxy, error) {
	p, err := x.Client.CreateProxy(name, "127.0.0.1:0", upstream)
	if err != nil {
		return nil, err
	}
	return &Proxy{Proxy: p}, nil
}

// Close stops every proxy (closing the connections through them) and the
// API server.
func (x *Toxi) Close() {
	_ = x.srv.Collection.Clear()
	x.api.Close()
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.CloseIdleConnections() // the API client's
	}
}

// Proxy is one toxiproxy proxy.
type Proxy struct {
	*toxiclient.Proxy
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.Listen }

// URL is the proxy's address as an http:// base URL.
func (p *Proxy) URL() string { return "http://" + p.Listen }

// Toxic adds a toxic to the proxy, on the downstream (server → client)
// direction unless stream says "upstream".
func (p *Proxy) Toxic(name, typ, stream string, attrs map[string]any) error {
	if stream == "" {
		stream = "downstream"
	}
	_, err := p.AddToxic(name, typ, stream, 1, toxiclient.Attributes(attrs))
	return err
}

// Clear removes every toxic and enables the proxy.
func (p *Proxy) Clear() error {
	ts, err := p.Toxics()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		errs = append(errs, p.RemoveToxic(t.Name))
	}
	if !p.Enabled {
		errs = append(errs, p.Enable())
	}
	return errors.Join(errs...)
}

// IgnoreToxiproxy makes goleak overlook toxiproxy's own goroutines: a
// toxic's pipe (and the reader feeding it) can stay blocked on a channel
// send after its connection closed, a leak of toxiproxy's link teardown,
// not of the code under test.
func IgnoreToxiproxy() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
	}
}
