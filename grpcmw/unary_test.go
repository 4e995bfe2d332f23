package grpcmw_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/ratelimit"
)

var insecureDial = grpcmw.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials()))

func newClient(t testing.TB, opts ...grpcmw.Option) *grpcmw.Client {
	t.Helper()
	c, err := grpcmw.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundRobin makes picks deterministic: endpoints in the order given.
var roundRobin = grpcmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1})

func noBudget(_ testing.TB, attempts int) failover.Config {
	return failover.Config{MaxAttempts: attempts, BudgetRatio: -1, BaseBackoff: -1}
}

func TestConfigErrorsAreClear(t *testing.T) {
	cc := startBuf(t, "a").dial(t)
	bp, _ := balancer.New(balancer.Config{})
	tests := []struct {
		name string
		opts []grpcmw.Option
		want string
	}{
		{"no tiers", nil, "no tiers"},
		{"empty tier", []grpcmw.Option{grpcmw.WithTier(degrade.Tier{Name: "t"})}, `tier "t" (WithTier #1) has no endpoints`},
		{"no name", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("", cc))}, "has no Name"},
		{"duplicate name", []grpcmw.Option{
			grpcmw.WithTier(degrade.Tier{Name: "p"}, grpcmw.Conn("a", cc)),
			grpcmw.WithTier(degrade.Tier{Name: "f"}, grpcmw.Conn("a", cc)),
		}, `endpoint name "a" is used twice`},
		{"no conn nor address", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Endpoint{Endpoint: sturdy.Endpoint{Name: "x"}})}, "neither Conn nor Address"},
		{"picker set", []grpcmw.Option{grpcmw.WithTier(degrade.Tier{Name: "p", Picker: bp}, grpcmw.Conn("a", cc))}, "Picker is set"},
		{"balancer endpoints", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc)), grpcmw.WithBalancer(balancer.Config{Endpoints: []sturdy.Endpoint{{Name: "z"}}})}, "leave Config.Endpoints"},
		{"negative max wait", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc)), grpcmw.WithMaxWait(-1)}, "WithMaxWait"},
		{"bad code", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc)), grpcmw.WithCodeClass(99, sturdy.Fatal)}, "not a gRPC status code"},
		{"no transport security", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Target("a", "127.0.0.1:1"))}, `dial endpoint "a"`},
		{"bad probe config", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc)), grpcmw.WithProbes(health.ProbeConfig{Interval: -1})}, "WithProbes"},
		{"bad balancer", []grpcmw.Option{grpcmw.WithEndpoints(grpcmw.Conn("a", cc)), grpcmw.WithBalancer(balancer.Config{Decay: -1})}, "Decay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := grpcmw.New(tt.opts...)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "grpcmw: "), err.Error())
		})
	}
	t.Run("every error at once, before any dial", func(t *testing.T) {
		// A Target without transport credentials fails only when dialed:
		// the configuration errors are all reported, and nothing is dialed.
		_, err := grpcmw.New(grpcmw.WithEndpoints(grpcmw.Target("a", "127.0.0.1:1")), grpcmw.WithMaxWait(-1),
			grpcmw.WithTier(degrade.Tier{Name: "f", Quality: 2}, grpcmw.Conn("b", cc)),
			grpcmw.WithProbes(health.ProbeConfig{Interval: time.Second}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "WithMaxWait")
		assert.Contains(t, err.Error(), `tier "f" (WithTier #2): Quality is 2`)
		assert.NotContains(t, err.Error(), "dial", "a dial was attempted before the configuration was checked")
	})
	t.Run("package interceptors refuse what needs Close", func(t *testing.T) {
		_, err := grpcmw.UnaryClientInterceptor(grpcmw.WithEndpoints(grpcmw.Target("a", "127.0.0.1:1")), insecureDial)
		assert.ErrorContains(t, err, "use New and Close")
		_, err = grpcmw.StreamClientInterceptor(grpcmw.WithEndpoints(grpcmw.Conn("a", cc)), grpcmw.WithProbes(health.ProbeConfig{}))
		assert.ErrorContains(t, err, "use New, and Close")
	})
}

func TestServerStoppedMidRunCallsContinueOnOthers(t *testing.T) {
	// a's Stop waits for its handlers, so that every call a counts is
	// counted before atStop reads it.
	servers := []*testServer{startTCP(t, "a", grpc.WaitForHandlers(true)), startTCP(t, "b"), startTCP(t, "c")}
	var eps []grpcmw.Endpoint
	for _, s := range servers {
		eps = append(eps, grpcmw.Target(s.id, s.addr))
	}
	c := newClient(t, grpcmw.WithEndpoints(eps...), insecureDial, grpcmw.WithFailover(noBudget(t, 3)))
	stub := testpb.NewTestServiceClient(c)

	var failed, atStop atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if w == 0 && i == 10 {
					servers[0].srv.Stop() // mid-run, with calls in flight on the others
					atStop.Store(servers[0].calls.Load())
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := stub.UnaryCall(ctx, req("x"))
				cancel()
				if err != nil {
					failed.Add(1)
					t.Errorf("call failed: %v", err)
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, failed.Load())
	// After the stop, a served nothing more (its last calls were in
	// flight): the other two took every other call.
	assert.Equal(t, atStop.Load(), servers[0].calls.Load())
	assert.GreaterOrEqual(t, servers[1].calls.Load()+servers[2].calls.Load(), 200-atStop.Load())
}

func TestNotServingIsEjectedByProbeAndBackWhenServing(t *testing.T) {
	a, b := startTCP(t, "a"), startTCP(t, "b")
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Target("a", a.addr), grpcmw.Target("b", b.addr)), insecureDial,
		grpcmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, PanicThreshold: -1}),
		grpcmw.WithProbes(health.ProbeConfig{Interval: 10 * time.Millisecond, Timeout: time.Second, Jitter: -1}))
	stub := testpb.NewTestServiceClient(c)

	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, "a ejected", func() bool { return grpcmw.TrackerOf(c).State("a") == health.Ejected })
	before := a.calls.Load()
	for range 20 {
		_, err := stub.UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
	}
	assert.Equal(t, before, a.calls.Load(), "an ejected endpoint took calls")

	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	eventually(t, "a allowed again", func() bool { return grpcmw.TrackerOf(c).Allowed("a") })
	eventually(t, "a takes calls again", func() bool {
		_, err := stub.UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
		return a.calls.Load() > before
	})
}

func TestHealthProberTreatsUnimplementedAsHealthy(t *testing.T) {
	bare := serveBuf(t, newTestServer("bare", false))
	lisSrv := startBuf(t, "with-health")
	p := grpcmw.HealthProber{Conns: map[string]grpc.ClientConnInterface{
		"bare":    bare.dial(t),
		"healthy": lisSrv.dial(t),
	}}
	ctx := context.Background()
	assert.NoError(t, p.Probe(ctx, sturdy.Endpoint{Name: "bare"}))
	assert.NoError(t, p.Probe(ctx, sturdy.Endpoint{Name: "healthy"}))
	lisSrv.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	assert.ErrorContains(t, p.Probe(ctx, sturdy.Endpoint{Name: "healthy"}), "NOT_SERVING")
	assert.ErrorContains(t, p.Probe(ctx, sturdy.Endpoint{Name: "nope"}), "no conn")
}

func TestResourceExhaustedWithPushbackCoolsDownAndFallsBack(t *testing.T) {
	primary, fallback := startTCP(t, "primary"), startTCP(t, "fallback")
	primary.set(behavior{code: codes.ResourceExhausted, trailer: metadata.Pairs(sturdy.MetadataRetryPushbackMs, "5000")})
	var fallbacks atomic.Int64
	c := newClient(t, insecureDial,
		grpcmw.WithTier(degrade.Tier{Name: "big", Model: "llama-70b"}, grpcmw.Target("primary", primary.addr)),
		grpcmw.WithTier(degrade.Tier{Name: "small", Model: "llama-8b"}, grpcmw.Target("fallback", fallback.addr)),
		grpcmw.WithModelRewrite(func(tier degrade.Tier, method string, r any) (any, error) {
			in := r.(*testpb.SimpleRequest)
			out := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(tier.Model)}, ResponseSize: in.ResponseSize}
			return out, nil
		}),
		grpcmw.WithOnFallback(func(sturdy.Fallback) { fallbacks.Add(1) }),
	)
	stub := testpb.NewTestServiceClient(c)

	in := req("caller's")
	resp, err := stub.UnaryCall(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, "fallback", resp.GetServerId())
	assert.Equal(t, "llama-8b", string(resp.GetPayload().GetBody()), "the fallback tier got the rewritten request")
	assert.Equal(t, "caller's", string(in.GetPayload().GetBody()), "the caller's request was modified")
	assert.Equal(t, int64(1), primary.calls.Load())
	assert.True(t, grpcmw.TrackerOf(c).Member("primary").CoolingDown(), "pushback did not cool the endpoint down")

	for range 10 {
		resp, err := stub.UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
		assert.Equal(t, "fallback", resp.GetServerId())
	}
	assert.Equal(t, int64(1), primary.calls.Load(), "a cooling endpoint took calls")
	assert.Equal(t, int64(11), fallbacks.Load())
}

func TestInvalidPushbackMeansDoNotRetry(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.ResourceExhausted, trailer: metadata.Pairs(sturdy.MetadataRetryPushbackMs, "-1")})
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))), roundRobin,
		grpcmw.WithFailover(noBudget(t, 3)))
	var trailer metadata.MD
	_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"), grpc.Trailer(&trailer))
	require.Error(t, err)
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Zero(t, b.calls.Load(), "the call was retried despite the pushback")
	assert.Equal(t, []string{"-1"}, trailer.Get(sturdy.MetadataRetryPushbackMs), "the deciding attempt's trailer reaches the caller")
}

func TestFailedCallIsAStatusErrorWrappingSturdyError(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable})
	b.set(behavior{code: codes.Internal})
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))), roundRobin,
		grpcmw.WithFailover(noBudget(t, 3)))
	_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
	require.Error(t, err)

	assert.Equal(t, codes.Internal, status.Code(err), "the deciding (last) attempt's code")
	var se *sturdy.Error
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Attempts, 2)
	assert.Equal(t, "a", se.Attempts[0].Endpoint)
	assert.Equal(t, sturdy.Unavailable, se.Attempts[0].Class)
	assert.Equal(t, "b", se.Attempts[1].Endpoint)
	assert.ErrorIs(t, err, sturdy.ErrUnavailable)
	var ge *grpcmw.StatusError
	require.ErrorAs(t, err, &ge)
	msg := status.Convert(err).Message()
	assert.Contains(t, msg, "a says no")
	assert.Contains(t, msg, "b says no")
	assert.Contains(t, msg, "2 attempts")
}

func TestErrorCodes(t *testing.T) {
	t.Run("no endpoint pickable is UNAVAILABLE", func(t *testing.T) {
		a := startBuf(t, "a")
		c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))),
			grpcmw.WithBalancer(balancer.Config{PanicThreshold: -1}))
		grpcmw.TrackerOf(c).Add("a").ProbeResult(errors.New("down"))
		_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		assert.ErrorIs(t, err, balancer.ErrNoEndpoint)
		assert.Zero(t, a.calls.Load())
	})
	t.Run("rate limited is RESOURCE_EXHAUSTED with RetryInfo", func(t *testing.T) {
		a := startBuf(t, "a")
		c := newClient(t, grpcmw.WithTier(degrade.Tier{Name: "p", Limit: ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}}, grpcmw.Conn("a", a.dial(t))))
		stub := testpb.NewTestServiceClient(c)
		_, err := stub.UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
		_, err = stub.UnaryCall(context.Background(), req("x"))
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		assert.ErrorIs(t, err, ratelimit.ErrLimited)
		var ri *errdetails.RetryInfo
		for _, d := range status.Convert(err).Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				ri = r
			}
		}
		require.NotNil(t, ri, "no RetryInfo detail")
		assert.Greater(t, ri.GetRetryDelay().AsDuration(), time.Duration(0))
	})
	t.Run("caller's deadline is DEADLINE_EXCEEDED", func(t *testing.T) {
		a := startBuf(t, "a")
		a.set(behavior{delay: time.Second})
		c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := testpb.NewTestServiceClient(c).UnaryCall(ctx, req("x"))
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
		assert.ErrorIs(t, err, sturdy.ErrCanceled)
	})
	t.Run("caller's cancel is CANCELED", func(t *testing.T) {
		a := startBuf(t, "a")
		a.set(behavior{delay: time.Second})
		c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := testpb.NewTestServiceClient(c).UnaryCall(ctx, req("x"))
		assert.Equal(t, codes.Canceled, status.Code(err), "%v", err)
	})
	t.Run("attempt timeout is a Timeout and fails over", func(t *testing.T) {
		a, b := startBuf(t, "a"), startBuf(t, "b")
		a.set(behavior{delay: time.Second})
		c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))), roundRobin,
			grpcmw.WithFailover(failover.Config{MaxAttempts: 2, AttemptTimeout: 250 * time.Millisecond, BudgetRatio: -1, BaseBackoff: -1}))
		resp, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
		assert.Equal(t, "b", resp.GetServerId())
	})
	t.Run("INVALID_ARGUMENT is fatal unless the hook says too large", func(t *testing.T) {
		small, big := startBuf(t, "small"), startBuf(t, "big")
		small.set(behavior{code: codes.InvalidArgument})
		opts := []grpcmw.Option{
			grpcmw.WithTier(degrade.Tier{Name: "small", ContextWindow: 8000}, grpcmw.Conn("small", small.dial(t))),
			grpcmw.WithTier(degrade.Tier{Name: "big", ContextWindow: 128000}, grpcmw.Conn("big", big.dial(t))),
		}
		c := newClient(t, opts...)
		_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
		assert.Equal(t, codes.InvalidArgument, status.Code(err))
		assert.Zero(t, big.calls.Load())

		c = newClient(t, append(opts, grpcmw.WithTooLarge(func(s *status.Status) bool {
			return strings.Contains(s.Message(), "says no")
		}))...)
		resp, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
		require.NoError(t, err)
		assert.Equal(t, "big", resp.GetServerId())
	})
	t.Run("closed client is UNAVAILABLE", func(t *testing.T) {
		a := startBuf(t, "a")
		c, err := grpcmw.New(grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
		require.NoError(t, err)
		require.NoError(t, c.Close())
		require.NoError(t, c.Close())
		_, err = testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
		assert.Equal(t, codes.Unavailable, status.Code(err))
		_, err = testpb.NewTestServiceClient(c).StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
		assert.Equal(t, codes.Unavailable, status.Code(err))
	})
}

func TestCodeClassOverride(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Internal})
	eps := grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t)))
	c := newClient(t, eps, roundRobin, grpcmw.WithFailover(noBudget(t, 3)))
	resp, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
	require.NoError(t, err, "INTERNAL is retried by default")
	assert.Equal(t, "b", resp.GetServerId())

	c = newClient(t, eps, roundRobin, grpcmw.WithFailover(noBudget(t, 3)), grpcmw.WithCodeClass(codes.Internal, sturdy.Fatal))
	_, err = testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
	assert.Equal(t, codes.Internal, status.Code(err))
}

func TestSlowServerHedgeWins(t *testing.T) {
	slow, fast := startTCP(t, "slow"), startTCP(t, "fast")
	slow.set(behavior{delay: 2 * time.Second})
	c := newClient(t, insecureDial, roundRobin, grpcmw.WithHedge(hedge.Config{Delay: 20 * time.Millisecond, BudgetRatio: -1}),
		grpcmw.WithEndpoints(grpcmw.Target("slow", slow.addr), grpcmw.Target("fast", fast.addr)))

	var header, trailer metadata.MD
	resp, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"), grpc.Header(&header), grpc.Trailer(&trailer))
	require.NoError(t, err)
	assert.Equal(t, "fast", resp.GetServerId())
	assert.Equal(t, []string{"fast"}, header.Get("server"), "the winner's header")
	assert.Equal(t, []string{"fast"}, trailer.Get("served-by"), "the winner's trailer")
	assert.Equal(t, int64(1), slow.calls.Load())
	eventually(t, "the losing attempt cancelled", func() bool { return slow.canceled.Load() == 1 })
}

// TestHedgedCallsNeverShareReplies runs many hedged calls at once; with
// -race, a reply written by two attempts would be reported.
func TestHedgedCallsNeverShareReplies(t *testing.T) {
	var eps []grpcmw.Endpoint
	for _, id := range []string{"a", "b", "c"} {
		s := startBuf(t, id)
		s.set(behavior{delay: time.Millisecond})
		eps = append(eps, grpcmw.Conn(id, s.dial(t)))
	}
	c := newClient(t, grpcmw.WithEndpoints(eps...), grpcmw.WithHedge(hedge.Config{Delay: 500 * time.Microsecond, MaxHedges: 2, BudgetRatio: -1}))
	stub := testpb.NewTestServiceClient(c)

	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 20 {
				body := fmt.Sprintf("%d/%d", g, i)
				reply := new(testpb.SimpleResponse)
				err := c.Invoke(context.Background(), "/grpc.testing.TestService/UnaryCall", req(body), reply)
				if err != nil {
					t.Errorf("call %s: %v", body, err)
					return
				}
				if got := string(reply.GetPayload().GetBody()); got != body {
					t.Errorf("call %s got the reply of %s", body, got)
				}
			}
		})
	}
	wg.Wait()
	_ = stub
}

func TestEndpointMetadataGoesOnlyToItsEndpoint(t *testing.T) {
	seen := map[string][]string{}
	var mu sync.Mutex
	record := func(id string) grpc.ServerOption {
		return grpc.UnaryInterceptor(func(ctx context.Context, r any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			mu.Lock()
			seen[id] = append(seen[id], md.Get("api-key")...)
			mu.Unlock()
			return h(ctx, r)
		})
	}
	mk := func(id string) *testServer { return serveBuf(t, newTestServer(id, false, record(id))) }
	a, b := mk("a"), mk("b")
	a.set(behavior{code: codes.Unavailable})
	epA := grpcmw.Conn("a", a.dial(t))
	epA.Metadata = metadata.Pairs("api-key", "key-a")
	epB := grpcmw.Conn("b", b.dial(t))
	epB.Metadata = metadata.Pairs("api-key", "key-b")
	c := newClient(t, grpcmw.WithEndpoints(epA, epB), roundRobin, grpcmw.WithFailover(noBudget(t, 2)))
	_, err := testpb.NewTestServiceClient(c).UnaryCall(context.Background(), req("x"))
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"key-a"}, seen["a"])
	assert.Equal(t, []string{"key-b"}, seen["b"])
}

func TestCallerCredentialsAreDroppedOrReplaced(t *testing.T) {
	for _, pass := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "WithCallerCredentials"}[pass], func(t *testing.T) {
			type seenMD struct{ auth, key, goog []string }
			seen := map[string]seenMD{}
			var mu sync.Mutex
			record := func(id string) grpc.ServerOption {
				return grpc.UnaryInterceptor(func(ctx context.Context, r any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
					md, _ := metadata.FromIncomingContext(ctx)
					mu.Lock()
					seen[id] = seenMD{auth: md.Get("authorization"), key: md.Get("api-key"), goog: md.Get("x-goog-api-key")}
					mu.Unlock()
					return h(ctx, r)
				})
			}
			mk := func(id string) *testServer { return serveBuf(t, newTestServer(id, false, record(id))) }
			a, b := mk("a"), mk("b")
			a.set(behavior{code: codes.Unavailable})
			epA := grpcmw.Conn("a", a.dial(t))
			epA.Metadata = metadata.Pairs("Authorization", "Bearer key-a")
			epB := grpcmw.Conn("b", b.dial(t)) // no credential of its own
			opts := []grpcmw.Option{grpcmw.WithEndpoints(epA, epB), roundRobin, grpcmw.WithFailover(noBudget(t, 2))}
			if pass {
				opts = append(opts, grpcmw.WithCallerCredentials())
			}
			c := newClient(t, opts...)
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer caller", "api-key", "caller-key", "x-goog-api-key", "caller-goog", "x-trace", "1")
			_, err := testpb.NewTestServiceClient(c).UnaryCall(ctx, req("x"))
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{"Bearer key-a"}, seen["a"].auth, "an endpoint's own credential replaces the caller's")
			if pass {
				assert.Equal(t, []string{"Bearer caller"}, seen["b"].auth)
				assert.Equal(t, []string{"caller-key"}, seen["b"].key)
				assert.Equal(t, []string{"caller-goog"}, seen["b"].goog)
			} else {
				assert.Empty(t, seen["a"].key, "the caller's api-key must not reach any endpoint")
				assert.Empty(t, seen["b"].auth, "the caller's authorization must not reach any endpoint")
				assert.Empty(t, seen["b"].key)
				assert.Empty(t, seen["a"].goog, "the caller's x-goog-api-key must not reach any endpoint")
				assert.Empty(t, seen["b"].goog)
			}
		})
	}
}

func TestInterceptorsIgnoreTheConnTheyAreInstalledOn(t *testing.T) {
	a := startBuf(t, "a")
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
	cc, err := grpc.NewClient("passthrough:///sturdy", append(c.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	defer cc.Close()
	stub := testpb.NewTestServiceClient(cc)
	resp, err := stub.UnaryCall(context.Background(), req("x"))
	require.NoError(t, err)
	assert.Equal(t, "a", resp.GetServerId())
	st, err := stub.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	n := 0
	for {
		if _, err := st.Recv(); err != nil {
			break
		}
		n++
	}
	assert.Equal(t, 3, n)

	ui, err := grpcmw.UnaryClientInterceptor(grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
	require.NoError(t, err)
	cc2, err := grpc.NewClient("passthrough:///sturdy", grpc.WithUnaryInterceptor(ui), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc2.Close()
	_, err = testpb.NewTestServiceClient(cc2).UnaryCall(context.Background(), req("x"))
	require.NoError(t, err)
}

func TestTokensAreEstimatedAndCorrected(t *testing.T) {
	a := startBuf(t, "a")
	var estimated, used atomic.Int64
	c := newClient(t, grpcmw.WithTier(degrade.Tier{Name: "p", Limit: ratelimit.Limit{TokensPerMinute: 100}}, grpcmw.Conn("a", a.dial(t))),
		grpcmw.WithTokens(
			func(method string, r any) int64 { estimated.Add(1); return 90 },
			func(method string, reply any) int64 { used.Add(1); return 1 },
		))
	stub := testpb.NewTestServiceClient(c)
	for range 5 {
		_, err := stub.UnaryCall(context.Background(), req("x"))
		require.NoError(t, err, "the estimate was not corrected by the usage")
	}
	assert.Equal(t, int64(5), estimated.Load())
	assert.Equal(t, int64(5), used.Load())
}

// Only a tier that may hedge decodes into replies of its own: a hedged
// tier beside an unhedged one still gives every attempt its own reply
// (its hedges fire: each answer takes 1ms, the delay is 500µs; run with
// -race), and the unhedged fallback decodes into the caller's reply.
func TestMixedHedgedAndUnhedgedTiers(t *testing.T) {
	a, b, fb := startBuf(t, "a"), startBuf(t, "b"), startBuf(t, "fb")
	a.set(behavior{delay: time.Millisecond})
	b.set(behavior{delay: time.Millisecond})
	c := newClient(t,
		grpcmw.WithTier(degrade.Tier{Name: "p", Hedge: &hedge.Config{Delay: 500 * time.Microsecond, BudgetRatio: -1}}, grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))),
		grpcmw.WithTier(degrade.Tier{Name: "f"}, grpcmw.Conn("fb", fb.dial(t))))
	calls := func(from ...string) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 10 {
					body := fmt.Sprintf("%d/%d", g, i)
					reply := new(testpb.SimpleResponse)
					if err := c.Invoke(context.Background(), "/grpc.testing.TestService/UnaryCall", req(body), reply); err != nil {
						t.Errorf("call %s: %v", body, err)
						return
					}
					if got := string(reply.GetPayload().GetBody()); got != body || !slices.Contains(from, reply.GetServerId()) {
						t.Errorf("call %s got %q from %q, want one of %v", body, got, reply.GetServerId(), from)
					}
				}
			})
		}
		wg.Wait()
	}
	calls("a", "b")
	a.set(behavior{code: codes.Unavailable})
	b.set(behavior{code: codes.Unavailable})
	calls("fb")
}
