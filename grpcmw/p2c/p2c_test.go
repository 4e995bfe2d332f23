package p2c_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/orca"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/serviceconfig"

	"github.com/sturdyai/sturdy/grpcmw/p2c"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type server struct {
	testpb.UnimplementedTestServiceServer
	id    string
	delay time.Duration
	queue float64 // reported in a per-call ORCA load report, if > 0
	calls atomic.Int64
}

func (s *server) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.calls.Add(1)
	if s.queue > 0 {
		orca.CallMetricsRecorderFromContext(ctx).SetNamedMetric("num_requests_waiting", s.queue)
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &testpb.SimpleResponse{ServerId: s.id}, nil
}

func start(t *testing.T, id string, delay time.Duration) (*server, string) {
	return startReporting(t, id, delay, 0)
}

func startReporting(t *testing.T, id string, delay time.Duration, queue float64) (*server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &server{id: id, delay: delay, queue: queue}
	g := grpc.NewServer(orca.CallMetricsServerOption(nil))
	testpb.RegisterTestServiceServer(g, s)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return s, lis.Addr().String()
}

func TestRegisteredBalancerPrefersTheFastServer(t *testing.T) {
	fast, fastAddr := start(t, "fast", 0)
	slow, slowAddr := start(t, "slow", 20*time.Millisecond)

	r := manual.NewBuilderWithScheme("sturdytest")
	r.InitialState(resolver.State{Endpoints: []resolver.Endpoint{
		{Addresses: []resolver.Address{{Addr: slowAddr}}},
		{Addresses: []resolver.Address{{Addr: fastAddr}}},
	}})
	cc, err := grpc.NewClient(r.Scheme()+":///pool",
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"sturdy_p2c_ewma":{"decay":"200ms","defaultRtt":"1ms"}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()

	stub := testpb.NewTestServiceClient(cc)
	for range 100 {
		_, err := stub.UnaryCall(context.Background(), &testpb.SimpleRequest{})
		require.NoError(t, err)
	}
	t.Logf("fast %d, slow %d", fast.calls.Load(), slow.calls.Load())
	assert.Greater(t, fast.calls.Load(), int64(85), "the fast server took too few calls")
}

// With "loadReports" the balancer prices the per-call ORCA reports: the
// server reporting a long queue loses the calls although it is faster.
func TestLoadReportsOutweighLatency(t *testing.T) {
	for _, on := range []bool{true, false} {
		busy, busyAddr := startReporting(t, "busy", 0, 500)
		idle, idleAddr := startReporting(t, "idle", 2*time.Millisecond, 0.5)
		r := manual.NewBuilderWithScheme("sturdytest")
		r.InitialState(resolver.State{Endpoints: []resolver.Endpoint{
			{Addresses: []resolver.Address{{Addr: busyAddr}}},
			{Addresses: []resolver.Address{{Addr: idleAddr}}},
		}})
		cfg := `{"loadBalancingConfig":[{"sturdy_p2c_ewma":{"decay":"200ms","defaultRtt":"1ms"}}]}`
		if on {
			cfg = `{"loadBalancingConfig":[{"sturdy_p2c_ewma":{"decay":"200ms","defaultRtt":"1ms","loadReports":true}}]}`
		}
		cc, err := grpc.NewClient(r.Scheme()+":///pool", grpc.WithResolvers(r), grpc.WithDefaultServiceConfig(cfg),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		stub := testpb.NewTestServiceClient(cc)
		// Until both connections are up, every call goes to the one that
		// is: count from the idle server's first call (or after a bounded
		// warm-up, as latency alone may never pick it).
		for i := 0; i < 1000 && idle.calls.Load() == 0; i++ {
			_, err := stub.UnaryCall(context.Background(), &testpb.SimpleRequest{})
			require.NoError(t, err)
		}
		busy.calls.Store(0)
		for range 100 {
			_, err := stub.UnaryCall(context.Background(), &testpb.SimpleRequest{})
			require.NoError(t, err)
		}
		_ = cc.Close()
		t.Logf("load reports %v: the busy server took %d of 100 calls", on, busy.calls.Load())
		if on {
			assert.Less(t, busy.calls.Load(), int64(15), "with reports the busy server took too many calls")
		} else {
			assert.Greater(t, busy.calls.Load(), int64(30), "without reports the faster (busy) server took too few calls (it got over twice the 15 that reports allow)")
		}
	}
}

func TestParseConfig(t *testing.T) {
	b := balancerBuilder(t)
	for _, tt := range []struct {
		js string
		ok bool
	}{
		{`{}`, true},
		{`{"decay":"5s","defaultRtt":"10ms"}`, true},
		{`{"loadReports":true}`, true},
		{`{"decay":"soon"}`, false},
		{`{"defaultRtt":"-1s"}`, false},
		{`[`, false},
	} {
		cfg, err := b.ParseConfig([]byte(tt.js))
		if tt.ok {
			assert.NoError(t, err, tt.js)
			assert.IsType(t, &p2c.Config{}, cfg)
		} else {
			assert.Error(t, err, tt.js)
		}
	}
}

func balancerBuilder(t *testing.T) interface {
	ParseConfig([]byte) (serviceconfig.LoadBalancingConfig, error)
} {
	t.Helper()
	b := getBuilder(p2c.Name)
	require.NotNil(t, b, "not registered")
	return parser{b}
}
