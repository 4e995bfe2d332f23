package p2c

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/grpcmw/internal/grpcclass"
	"github.com/sturdyai/sturdy/grpcmw/internal/grpcload"
)

// Name is the balancer's name in a gRPC service config.
const Name = "sturdy_p2c_ewma"

func init() {
	grpcbalancer.Register(builder{})
}

// Config is the balancer's service-config entry.
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	// Decay is the Peak-EWMA time constant, a Go duration ("10s"). Empty
	// means balancer.DefaultDecay.
	Decay string `json:"decay,omitempty"`
	// DefaultRTT is the cost of an endpoint never observed ("30ms"). Empty
	// means balancer.DefaultRTT.
	DefaultRTT string `json:"defaultRtt,omitempty"`
	// LoadReports prices endpoints with the per-call ORCA load reports
	// their servers send in the endpoint-load-metrics-bin trailer
	// (orca.CallMetricsServerOption), as grpcmw.WithLoadReports does; see
	// the balancer package doc.
	LoadReports bool `json:"loadReports,omitempty"`

	decay, rtt time.Duration
}

type builder struct{}

func (builder) Name() string { return Name }

func (builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := &Config{}
	if len(js) > 0 {
		if err := json.Unmarshal(js, cfg); err != nil {
			return nil, fmt.Errorf("%s: invalid config %s: %v", Name, js, err)
		}
	}
	var err error
	if cfg.decay, err = parseDuration("decay", cfg.Decay); err != nil {
		return nil, err
	}
	if cfg.rtt, err = parseDuration("defaultRtt", cfg.DefaultRTT); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: %s %q is not a non-negative Go duration such as \"10s\"", Name, field, v)
	}
	return d, nil
}

func (builder) Build(cc grpcbalancer.ClientConn, opts grpcbalancer.BuildOptions) grpcbalancer.Balancer {
	b := &p2cBalancer{ClientConn: cc, cls: grpcclass.Default()}
	b.child = endpointsharding.NewBalancer(b, opts, grpcbalancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	return b
}

// p2cBalancer embeds the ClientConn to intercept the child's UpdateState,
// as grpc-go's least_request does.
type p2cBalancer struct {
	grpcbalancer.ClientConn
	child grpcbalancer.Balancer
	cls   grpcclass.Classifier

	mu    sync.Mutex
	cfg   Config
	costs *balancer.Balancer // sturdy's P2C Peak-EWMA over the ready endpoints
}

func (b *p2cBalancer) UpdateClientConnState(s grpcbalancer.ClientConnState) error {
	cfg, ok := s.BalancerConfig.(*Config)
	if !ok || cfg == nil {
		cfg = &Config{}
	}
	b.mu.Lock()
	b.cfg.LoadReports = cfg.LoadReports
	if b.costs == nil || cfg.decay != b.cfg.decay || cfg.rtt != b.cfg.rtt {
		costs, err := balancer.New(balancer.Config{Policy: balancer.P2CPeakEWMA, Decay: cfg.decay, DefaultRTT: cfg.rtt})
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("%s: %v", Name, err)
		}
		b.cfg, b.costs = *cfg, costs
	}
	b.mu.Unlock()
	return b.child.UpdateClientConnState(grpcbalancer.ClientConnState{
		// Let pick_first children report client-side health checks.
		ResolverState: pickfirst.EnableHealthListener(s.ResolverState),
	})
}

func (b *p2cBalancer) ResolverError(err error) { b.child.ResolverError(err) }

func (b *p2cBalancer) UpdateSubConnState(grpcbalancer.SubConn, grpcbalancer.SubConnState) {
	// endpointsharding's children own their SubConns.
}

func (b *p2cBalancer) ExitIdle() { b.child.ExitIdle() }

func (b *p2cBalancer) Close() { b.child.Close() }

// UpdateState receives the endpointsharding picker and publishes ours
// over its ready children; with none ready it passes the child's on.
func (b *p2cBalancer) UpdateState(state grpcbalancer.State) {
	var ready []endpointsharding.ChildState
	for _, cs := range endpointsharding.ChildStatesFromPicker(state.Picker) {
		if cs.State.ConnectivityState == connectivity.Ready {
			ready = append(ready, cs)
		}
	}
	if len(ready) == 0 {
		b.ClientConn.UpdateState(state)
		return
	}
	b.mu.Lock()
	costs := b.costs
	b.mu.Unlock()
	if costs == nil {
		b.ClientConn.UpdateState(state)
		return
	}
	eps := make([]sturdy.Endpoint, len(ready))
	b.mu.Lock()
	loads := b.cfg.LoadReports
	b.mu.Unlock()
	p := &picker{costs: costs, cls: &b.cls, loads: loads, children: make(map[string]grpcbalancer.Picker, len(ready))}
	for i, cs := range ready {
		name := endpointName(cs.Endpoint)
		if _, dup := p.children[name]; dup || name == "" {
			name += "#" + strconv.Itoa(i)
		}
		eps[i] = sturdy.Endpoint{Name: name}
		p.children[name] = cs.State.Picker
		p.list = append(p.list, cs.State.Picker)
	}
	// Update keeps what was learned about endpoints that stay ready.
	if err := costs.Update(eps); err != nil {
		b.ClientConn.UpdateState(state)
		return
	}
	b.ClientConn.UpdateState(grpcbalancer.State{ConnectivityState: connectivity.Ready, Picker: p})
}

func endpointName(ep resolver.Endpoint) string {
	if len(ep.Addresses) == 0 {
		return ""
	}
	return ep.Addresses[0].Addr
}

type picker struct {
	costs    *balancer.Balancer
	cls      *grpcclass.Classifier
	loads    bool // Config.LoadReports
	children map[string]grpcbalancer.Picker
	list     []grpcbalancer.Picker
}

// Pick picks with sturdy's balancer and hands the RPC to that endpoint's
// pick_first child. It never blocks.
func (p *picker) Pick(info grpcbalancer.PickInfo) (grpcbalancer.PickResult, error) {
	ep, done, err := p.costs.Pick(info.Ctx, nil)
	if err != nil {
		// Only a done context gets here (every ready endpoint is
		// allowed): let the child report it.
		return p.list[rand.IntN(len(p.list))].Pick(info)
	}
	child := p.children[ep.Name]
	if child == nil {
		// The endpoint set changed between this picker and the costs'
		// Update; a newer picker is on its way.
		done(sturdy.Outcome{Class: sturdy.Canceled})
		return p.list[rand.IntN(len(p.list))].Pick(info)
	}
	res, err := child.Pick(info)
	if err != nil {
		done(sturdy.Outcome{Class: sturdy.Canceled})
		return res, err
	}
	start := time.Now()
	childDone := res.Done
	res.Done = func(di grpcbalancer.DoneInfo) {
		out := p.cls.Outcome(di.Err, nil, di.Trailer)
		out.Latency = time.Since(start)
		out.End = start.Add(out.Latency) // spares the balancer a clock read
		if p.loads {
			out.Load = grpcload.Report(di.Trailer)
		}
		done(out)
		if childDone != nil {
			childDone(di)
		}
	}
	return res, nil
}
