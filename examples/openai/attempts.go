package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// attemptLogger is the base RoundTripper under sturdy's Transport: it sees
// every attempt (each on the endpoint sturdy picked) and prints how it
// ended, so the output shows failover happening.
type attemptLogger struct {
	base  http.RoundTripper
	names map[string]string // host → endpoint name
	mu    sync.Mutex
	out   io.Writer
}

func newAttemptLogger(out io.Writer, tiers ...tier) *attemptLogger {
	l := &attemptLogger{base: http.DefaultTransport, names: make(map[string]string), out: out}
	for _, t := range tiers {
		for _, ep := range t.endpoints {
			if u, err := url.Parse(ep.Address); err == nil {
				l.names[u.Host] = ep.Name
			}
		}
	}
	return l
}

func (l *attemptLogger) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	name := l.names[req.URL.Host]
	if name == "" {
		name = req.URL.Host
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		fmt.Fprintf(l.out, "   attempt on %s: %v\n", name, err)
	} else {
		fmt.Fprintf(l.out, "   attempt on %s: %s\n", name, resp.Status)
	}
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// base transport through sturdy's.
func (l *attemptLogger) CloseIdleConnections() {
	if c, ok := l.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
