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

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/grpcmw/internal/grpcclass"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/internal/telemetry"
)

// Client sends gRPC calls over pools of endpoints with failover, hedging,
// fallback tiers, rate limits and health tracking. It is a
// grpc.ClientConnInterface, so generated stubs take it directly
// (pb.NewFooClient(client)), and it yields interceptors for a conn the
// caller already has. It is safe for concurrent use.
type Client struct {
	unary  *degrade.Chain // tiers with their hedging policies
	stream *degrade.Chain // the same tiers without hedging: streams are never hedged
	tiers  []*pool
	cls    grpcclass.Classifier

	rewrite     Rewrite
	replayMsgs  int
	replayBytes int
	estimate    func(method string, req any) int64
	usage       func(method string, reply any) int64
	tel         *telemetry.Telemetry

	owned      []*grpc.ClientConn
	stopProbes context.CancelFunc
	probesDone chan struct{}
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
}

var _ grpc.ClientConnInterface = (*Client)(nil)

// errClosed is the cause of calls made after Close.
var errClosed = errors.New("grpcmw: Client is closed")

// New builds a Client. It dials the Target endpoints (grpc.NewClient does
// not connect until the first call) and starts the health probes, if
// configured. A configuration that cannot work is an error that names
// what to fix. Close releases what New started.
func New(opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return build(cfg)
}

func build(cfg *config) (_ *Client, err error) {
	c := &Client{
		cls:         grpcclass.Default(),
		rewrite:     cfg.rewrite,
		replayMsgs:  cfg.replayMsgs,
		replayBytes: cfg.replayBytes,
		estimate:    cfg.estimate,
		usage:       cfg.usage,
	}
	defer func() {
		if err != nil {
			c.closeConns()
		}
	}()
	for code, class := range cfg.codes {
		c.cls.Set(code, class)
	}
	c.cls.TooLarge = cfg.tooLarge
	tracker := cfg.tracker
	if tracker == nil {
		// Ejections are counted by the telemetry built below.
		hcfg := health.Config{OnStateChange: func(sc health.StateChange) {
			if c.tel != nil {
				c.tel.OnStateChange(sc)
			}
		}}
		if tracker, err = health.New(hcfg); err != nil {
			return nil, err
		}
	}
	retry := cfg.retry
	if !cfg.retrySet {
		if retry, err = failover.New(failover.Config{}); err != nil {
			return nil, err
		}
	}
	dialOpts := append([]grpc.DialOption{grpc.WithDisableRetry()}, cfg.dialOpts...)

	var all []sturdy.Endpoint
	var telTiers []telemetry.Tier
	conns := map[string]grpc.ClientConnInterface{}
	uTiers := make([]degrade.Tier, len(cfg.tiers))
	sTiers := make([]degrade.Tier, len(cfg.tiers))
	for i, tc := range cfg.tiers {
		p := &pool{conns: make(map[string]*endpoint, len(tc.eps))}
		eps := make([]sturdy.Endpoint, len(tc.eps))
		for j, ep := range tc.eps {
			cc := ep.Conn
			if cc == nil {
				conn, derr := grpc.NewClient(ep.Address, dialOpts...)
				if derr != nil {
					return nil, fmt.Errorf("grpcmw: dial endpoint %q at %q: %w", ep.Name, ep.Address, derr)
				}
				c.owned = append(c.owned, conn)
				cc = conn
			}
			e := &endpoint{cc: cc} // the balancer adds the endpoint to the tracker
			if !cfg.passCreds {
				e.strip = append(e.strip, callerCredentialKeys...)
			}
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
			eps[j] = ep.Endpoint
			conns[ep.Name] = cc
		}
		all = append(all, eps...)
		bcfg := cfg.balancer
		bcfg.Endpoints, bcfg.Health = eps, tracker
		if p.b, err = balancer.New(bcfg); err != nil {
			return nil, fmt.Errorf("grpcmw: tier %d: %w", i, err)
		}
		c.tiers = append(c.tiers, p)
		t := tc.tier
		if t.Name == "" {
			t.Name = fmt.Sprintf("tier%d", i)
		}
		names := make([]string, len(eps))
		for j := range eps {
			names[j] = eps[j].Name
		}
		tt := telemetry.Tier{Name: t.Name, Endpoints: names, Retry: t.Retry, Hedge: t.Hedge}
		if tt.Retry == nil {
			tt.Retry = retry
		}
		if tt.Hedge == nil {
			tt.Hedge = cfg.hedge
		}
		telTiers = append(telTiers, tt)
		t.Picker = p
		p.hedged = t.Hedge != nil || cfg.hedge != nil
		uTiers[i] = t
		t.Hedge = nil
		sTiers[i] = t
	}
	tel, err := telemetry.New(telemetry.Config{
		Scope:          Scope,
		TracerProvider: cfg.telemetry.tp,
		MeterProvider:  cfg.telemetry.mp,
		Tiers:          telTiers,
		Health:         tracker,
	})
	if err != nil {
		return nil, fmt.Errorf("grpcmw: %w", err)
	}
	c.tel = tel
	hooks := tel.Hooks()
	onFallback := tel.OnFallback
	if user := cfg.onFallback; user != nil {
		onFallback = func(f degrade.Fallback) {
			tel.OnFallback(f)
			user(f)
		}
	}
	if c.unary, err = degrade.New(degrade.Config{Tiers: uTiers, Retry: retry, Hedge: cfg.hedge, MaxWait: cfg.maxWait, Hooks: hooks, OnFallback: onFallback}); err != nil {
		return nil, fmt.Errorf("grpcmw: %w", err)
	}
	if c.stream, err = degrade.New(degrade.Config{Tiers: sTiers, Retry: retry, MaxWait: cfg.maxWait, Hooks: hooks, OnFallback: onFallback}); err != nil {
		return nil, fmt.Errorf("grpcmw: %w", err)
	}
	if cfg.probe != nil {
		prober := HealthProber{Conns: conns, Service: cfg.probeSvc}
		// Validate the probe config now, so that a bad one fails New
		// rather than a goroutine.
		if err := cfg.probe.Validate(); err != nil {
			return nil, fmt.Errorf("grpcmw: WithHealthCheck: %w", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.stopProbes, c.probesDone = cancel, make(chan struct{})
		go func() {
			defer close(c.probesDone)
			_ = tracker.RunProbes(ctx, prober, all, *cfg.probe)
		}()
	}
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
		if c.stopProbes != nil {
			c.stopProbes()
			<-c.probesDone
		}
		c.closeErr = c.closeConns()
	})
	return c.closeErr
}

func (c *Client) closeConns() error {
	var errs []error
	if c.tel != nil {
		errs = append(errs, c.tel.Close())
	}
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
// Target endpoints (use Conn) and WithHealthCheck; use New and Close for
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
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.probe != nil {
		return nil, fmt.Errorf("grpcmw: %s cannot stop health probes; use New, and Close when done", fn)
	}
	for _, t := range cfg.tiers {
		for _, ep := range t.eps {
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
