package reliability

import (
	"cmp"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
)

// grpcRig is TestService servers, each behind its own toxiproxy proxy,
// and a grpcmw.Client that dials them through the proxies.
type grpcRig struct {
	toxi    *rig.Toxi
	servers map[string]*rig.GRPCServer
	proxies map[string]*rig.Proxy
	names   []string
	count   *rig.CountingInterceptor
	c       *grpcmw.Client
	stub    testpb.TestServiceClient
}

// fastReconnect keeps grpc-go's reconnect backoff short (its default
// starts at 1s and grows to 120s), so that a server that comes back is
// reached again within a probe interval.
var fastReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

func newGRPCRig(t *testing.T, tiers [][]string, models []string, opts ...grpcmw.Option) *grpcRig {
	t.Helper()
	r := &grpcRig{toxi: rig.StartToxi(), servers: map[string]*rig.GRPCServer{}, proxies: map[string]*rig.Proxy{}, count: &rig.CountingInterceptor{}}
	all := []grpcmw.Option{grpcmw.WithDialOptions(append(r.count.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), fastReconnect)...)}
	for i, names := range tiers {
		var eps []grpcmw.Endpoint
		for _, n := range names {
			s, err := rig.StartGRPC(n)
			if err != nil {
				t.Fatal(err)
			}
			p, err := r.toxi.Proxy(n, s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			r.servers[n], r.proxies[n] = s, p
			r.names = append(r.names, n)
			ep := grpcmw.Target(n, p.Addr())
			ep.Metadata = metadata.Pairs("authorization", "Bearer "+key(n))
			eps = append(eps, ep)
		}
		all = append(all, grpcmw.WithTier(degrade.Tier{Name: "tier" + string(rune('0'+i)), Model: models[i]}, eps...))
	}
	c, err := grpcmw.New(append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.c, r.stub = c, testpb.NewTestServiceClient(c)
	return r
}

// close closes the client, then toxiproxy and the servers, and returns
// how many server connections were still open once the client was closed.
func (r *grpcRig) close() int64 {
	_ = r.c.Close()
	open := settle(func() int64 {
		var n int64
		for _, s := range r.servers {
			n += s.Conns.Open()
		}
		return n
	})
	r.toxi.Close()
	for _, s := range r.servers {
		s.Stop()
	}
	return open
}

func grpcOpts(t *testing.T) []grpcmw.Option {
	return []grpcmw.Option{
		grpcmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin}),
		grpcmw.WithFailover(failover.Config{MaxAttempts: 3, AttemptTimeout: 250 * time.Millisecond,
			BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}),
		grpcmw.WithHedge(hedge.Config{Delay: 60 * time.Millisecond, BudgetRatio: 0.5}),
	}
}

// doGRPC makes one call, unary or (stream) server-streaming, and
// classifies it into ty as doHTTP does.
func doGRPC(t *testing.T, stub testpb.TestServiceClient, ty *tally, deadline time.Duration, stream bool) {
	t.Helper()
	ty.calls.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	defer func() {
		d := time.Since(start)
		ty.took(d)
		if d > deadline+slack {
			t.Errorf("call took %v, past its deadline %v", d, deadline)
		}
	}()
	fail := func(err error) {
		ty.errs.Add(1)
		if _, ok := status.FromError(err); !ok {
			t.Errorf("call error has no gRPC status: %v", err)
		}
		checkCallError(t, err)
	}
	if !stream {
		resp, err := stub.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 512, Payload: &testpb.Payload{Body: []byte(prompt)}})
		if err != nil {
			fail(err)
			return
		}
		if resp.GetServerId() == "" || len(resp.GetPayload().GetBody()) != 512 {
			t.Errorf("incomplete reply: %v", resp)
		}
		ty.ok.Add(1)
		return
	}
	params := make([]*testpb.ResponseParameters, 3)
	for i := range params {
		params[i] = &testpb.ResponseParameters{Size: 100, IntervalUs: 5000}
	}
	st, err := stub.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params, Payload: &testpb.Payload{Body: []byte(prompt)}})
	if err != nil {
		fail(err)
		return
	}
	got := 0
	for {
		_, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if got == 0 {
				fail(err)
			} else {
				ty.cut.Add(1)
			}
			return
		}
		got++
	}
	if got != len(params) {
		t.Errorf("stream ended cleanly after %d of %d messages", got, len(params))
	}
	ty.ok.Add(1)
}

// TestGRPCNetworkFaults is TestHTTPNetworkFaults for grpcmw: unary and
// server-streaming calls of the interop TestService through toxiproxy.
func TestGRPCNetworkFaults(t *testing.T) {
	for _, f := range netFaults {
		for _, every := range []bool{false, true} {
			name := f.name + "/one of three"
			if every {
				name = f.name + "/all three"
			}
			t.Run(name, func(t *testing.T) { grpcFault(t, f, every) })
		}
	}
}

func grpcFault(t *testing.T, f netFault, every bool) {
	leaks := leakCheck(t)
	r := newGRPCRig(t, [][]string{{"a", "b", "c"}}, []string{"big"}, grpcOpts(t)...)
	faulty := r.names[:1]
	if every {
		faulty = r.names
	}
	for _, n := range faulty {
		if err := f.apply(r.proxies[n]); err != nil {
			t.Fatal(err)
		}
	}
	calls, workers := 40, 4
	if every {
		calls = 20
	}
	var ty tally
	load(calls, workers, func(i int) { doGRPC(t, r.stub, &ty, faultDeadline, i%2 == 1) })

	fig := figure{Order: f.order + 5, Fault: f.name, Adapter: "grpcmw", Does: f.does, Deadline: faultDeadline, Attempts: r.count.N()}
	if every {
		fig.Order++
		fig.Fault += ", all endpoints"
		fig.Does = cmp.Or(f.grpcAll, f.all)
	} else {
		fig.Fault += ", 1 of 3 endpoints"
		fig.Does = cmp.Or(f.grpcDoes, f.does)
	}
	ty.fill(&fig)
	if !every && !f.cuts && fig.OK != fig.Calls {
		t.Errorf("%d of %d calls failed although two endpoints of three were fine", fig.Calls-fig.OK, fig.Calls)
	}
	if !every && f.cuts && fig.OK+fig.Cut != fig.Calls {
		t.Errorf("%d calls neither answered nor cut", fig.Calls-fig.OK-fig.Cut)
	}
	fig.OpenConn = r.close()
	fig.Leaked = leaks()
	record(t, fig)
}
