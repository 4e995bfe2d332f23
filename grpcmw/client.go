package grpcmw

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw/internal/grpcclass"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/pipeline"
	"github.com/sturdyai/sturdy/internal/telemetry"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Client sends gRPC calls over pools of endpoints with failover, hedging,
// fallback tiers, rate limits and health tracking. It is a
// grpc.ClientConnInterface, so generated stubs take it directly
// (pb.NewFooClient(client)), and it yields interceptors for a conn the
// caller already has. It is safe for concurrent use.
type Client struct {
	pl     *pipeline.Pipeline
	chain  *chain.Chain
	tiers  []*pool
	tierOf map[string]int // endpoint name → tier index
	cls    grpcclass.Classifier
	loads  bool // WithLoadReports

	rewrite     ModelRewrite
	replayMsgs  int
	replayBytes int
	estimate    func(method string, req any) int64
	usage       func(method string, reply any) int64
	keys        *keyer // nil unless the tiers balance by affinity
	tel         *telemetry.Telemetry

	owned     []*grpc.ClientConn
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ grpc.ClientConnInterface = (*Client)(nil)

// errClosed is the cause of calls made after Close.
var errClosed = errors.New("grpcmw: Client is closed")

// New builds a Client. A configuration that cannot work is an error that
// names every option or field to fix, returned before anything is dialed
// or started. New then dials the Target endpoints (grpc.NewClient does not
// connect until the first call) and starts the health probes, if
// configured. Close releases what New started.
func New(opts ...Option) (*Client, error) {
	return build(newConfig(opts))
}

func build(cfg *config) (_ *Client, err error) {
	for _, eps := range cfg.eps {
		for _, ep := range eps {
			if ep.QuotaKey != "" {
				if cfg.QuotaKeys == nil {
					cfg.QuotaKeys = map[string]string{}
				}
				cfg.QuotaKeys[ep.Name] = ep.QuotaKey
			}
			switch l := ep.Limit; {
			case l == ratelimit.Limit{}:
			case l.RequestsPerSecond < 0 || l.Burst < 0 || l.TokensPerMinute < 0 || l.TokenBurst < 0:
				cfg.Errs = append(cfg.Errs, fmt.Errorf("grpcmw: endpoint %q: Limit has a negative rate or burst", ep.Name))
			default:
				if cfg.EndpointLimits == nil {
					cfg.EndpointLimits = map[string]ratelimit.Limit{}
				}
				cfg.EndpointLimits[ep.Name] = l
			}
		}
	}
	pl, err := pipeline.Build(&cfg.Config, pipeline.Protocol{Op: "grpcmw", Scope: Scope, NoGenAI: true})
	if err != nil {
		return nil, err
	}
	c := &Client{
		pl:          pl,
		chain:       pl.Chain,
		tel:         pl.Tel,
		tierOf:      map[string]int{},
		cls:         grpcclass.Default(),
		rewrite:     cfg.rewrite,
		replayMsgs:  cfg.replayMsgs,
		replayBytes: cfg.replayBytes,
		estimate:    cfg.estimate,
		usage:       cfg.usage,
		keys:        newKeyer(pl.Affinity, cfg.keyHook),
		loads:       cfg.LoadReports,
	}
	defer func() {
		if err != nil {
			_ = c.closeConns()
		}
	}()
	for code, class := range cfg.codes {
		c.cls.Set(code, class)
	}
	c.cls.TooLarge = cfg.tooLarge
	dialOpts := append([]grpc.DialOption{grpc.WithDisableRetry()}, cfg.dialOpts...)
	conns := map[string]grpc.ClientConnInterface{}
	strip := []string(nil)
	if !cfg.CallerCredentials {
		for _, k := range pipeline.CallerCredentials {
			strip = append(strip, strings.ToLower(k))
		}
	}
	for i, eps := range cfg.eps {
		p := &pool{b: pl.Balancers[i], conns: make(map[string]*endpoint, len(eps)), hedged: pl.Chain.Hedged(i)}
		for _, ep := range eps {
			cc := ep.Conn
			if cc == nil {
				conn, derr := grpc.NewClient(ep.Address, dialOpts...)
				if derr != nil {
					return nil, fmt.Errorf("grpcmw: dial endpoint %q at %q: %w", ep.Name, ep.Address, derr)
				}
				c.owned = append(c.owned, conn)
				cc = conn
			}
			e := &endpoint{cc: cc, strip: slices.Clone(strip), server: serverAttrs(cc, ep.Address)}
			for k, vs := range ep.Metadata {
				k = strings.ToLower(k)
				if !slices.Contains(e.strip, k) {
					e.strip = append(e.strip, k)
				}
				for _, v := range vs {
					e.md = append(e.md, k, v)
				}
			}
			p.conns[ep.Name] = e
			conns[ep.Name] = cc
			c.tierOf[ep.Name] = i
		}
		c.tiers = append(c.tiers, p)
	}
	pl.StartProbes(HealthProber{Conns: conns, Service: cfg.probeSvc}, nil)
	return c, nil
}

// Close stops the health probes and closes the conns grpcmw dialed (not
// those the caller passed in), and makes later calls fail with
// UNAVAILABLE. Calls in flight on conns grpcmw dialed fail with CANCELED.
// It returns the first error closing a conn gave; later calls return the
// same.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.closeErr = c.closeConns()
	})
	return c.closeErr
}

func (c *Client) closeConns() error {
	errs := []error{c.pl.Close()}
	for _, cc := range c.owned {
		if err := cc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.owned = nil
	return errors.Join(errs...)
}

// UnaryClientInterceptor returns an interceptor that sends every unary
// call through c. The conn it is installed on never carries a call (its
// invoker is not called), so it never connects: give it any target, e.g.
// "passthrough:///sturdy".
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, _ *grpc.ClientConn, _ grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return c.Invoke(ctx, method, req, reply, opts...)
	}
}

// StreamClientInterceptor returns an interceptor that opens every stream
// through c. As with UnaryClientInterceptor, the conn it is installed on
// is never used.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, _ *grpc.ClientConn, method string, _ grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return c.NewStream(ctx, desc, method, opts...)
	}
}

// DialOptions returns the options that install both interceptors on a
// conn: grpc.NewClient("passthrough:///sturdy", append(c.DialOptions(),
// creds)...). (grpc-go has no public way to join dial options into one.)
func (c *Client) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()),
	}
}

// UnaryClientInterceptor builds a Client from opts and returns its unary
// interceptor. Nothing it builds needs closing, so it refuses what would:
// Target endpoints (use Conn) and WithProbes; use New and Close for
// those.
func UnaryClientInterceptor(opts ...Option) (grpc.UnaryClientInterceptor, error) {
	c, err := newUnclosed("UnaryClientInterceptor", opts)
	if err != nil {
		return nil, err
	}
	return c.UnaryClientInterceptor(), nil
}

// StreamClientInterceptor is UnaryClientInterceptor for streams.
func StreamClientInterceptor(opts ...Option) (grpc.StreamClientInterceptor, error) {
	c, err := newUnclosed("StreamClientInterceptor", opts)
	if err != nil {
		return nil, err
	}
	return c.StreamClientInterceptor(), nil
}

func newUnclosed(fn string, opts []Option) (*Client, error) {
	cfg := newConfig(opts)
	if cfg.Probes != nil {
		return nil, fmt.Errorf("grpcmw: %s cannot stop health probes; use New, and Close when done", fn)
	}
	for _, eps := range cfg.eps {
		for _, ep := range eps {
			if ep.Conn == nil {
				return nil, fmt.Errorf("grpcmw: %s cannot close a conn it dials (endpoint %q); pass a Conn, or use New and Close", fn, ep.Name)
			}
		}
	}
	return build(cfg)
}

// Invoke sends a unary call through the tiers: see the package doc.
func (c *Client) Invoke(ctx context.Context, method string, req, reply any, opts ...grpc.CallOption) error {
	if c.closed.Load() {
		return status.Error(codes.Unavailable, errClosed.Error())
	}
	return c.invoke(ctx, method, req, reply, opts)
}

// NewStream opens a stream through the tiers: see the package doc.
func (c *Client) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if c.closed.Load() {
		return nil, status.Error(codes.Unavailable, errClosed.Error())
	}
	return c.newStream(ctx, desc, method, opts)
}

// Stats returns the fallback chain's accounting: calls served per tier,
// their shares, failures, fallbacks and the expected quality.
func (c *Client) Stats() degrade.Stats { return degrade.Stats(c.chain.Stats()) }

// State returns the health state of the endpoint named name.
func (c *Client) State(name string) health.State { return c.pl.Tracker.State(name) }

// Availability returns the availability figures of the endpoint named
// name (uptime, MTBF, MTTR, availability), and false for an unknown name.
func (c *Client) Availability(name string) (health.Availability, bool) {
	return c.pl.Tracker.Availability(name)
}
