package rig

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
)

// CountingTransport counts every request it sends, in all and by host:
// the backend attempts of an httpmw.Transport built over it.
type CountingTransport struct {
	Base http.RoundTripper
	n    atomic.Int64
	mu   sync.Mutex
	by   map[string]int64
	path map[string]int64
}

// RoundTrip implements http.RoundTripper.
func (c *CountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	c.mu.Lock()
	if c.by == nil {
		c.by = map[string]int64{}
	}
	c.by[r.URL.Host]++
	if c.path == nil {
		c.path = map[string]int64{}
	}
	c.path[r.URL.Path]++
	c.mu.Unlock()
	return c.Base.RoundTrip(r)
}

// CloseIdleConnections closes the base's idle connections.
func (c *CountingTransport) CloseIdleConnections() {
	if b, ok := c.Base.(interface{ CloseIdleConnections() }); ok {
		b.CloseIdleConnections()
	}
}

// N is how many requests were sent.
func (c *CountingTransport) N() int64 { return c.n.Load() }

// Host is how many requests went to host (host:port).
func (c *CountingTransport) Host(host string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[host]
}

// Path is how many requests went to path (probes go to /health, chat
// completions to /v1/chat/completions).
func (c *CountingTransport) Path(path string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.path[path]
}

// Reset zeroes the counts.
func (c *CountingTransport) Reset() {
	c.n.Store(0)
	c.mu.Lock()
	c.by, c.path = nil, nil
	c.mu.Unlock()
}

// CountingInterceptor counts the unary calls and streams sent over a
// conn, health checks (grpc.health.v1) excepted: installed on grpcmw's
// endpoint conns (WithDialOptions), it counts backend attempts.
type CountingInterceptor struct{ n atomic.Int64 }

// N is how many calls and streams were started.
func (c *CountingInterceptor) N() int64 { return c.n.Load() }

// Reset zeroes the count.
func (c *CountingInterceptor) Reset() { c.n.Store(0) }

// DialOptions install the counter.
func (c *CountingInterceptor) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if !strings.HasPrefix(method, "/grpc.health.v1.") {
				c.n.Add(1)
			}
			return inv(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, st grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.n.Add(1)
			return st(ctx, desc, cc, method, opts...)
		}),
	}
}
