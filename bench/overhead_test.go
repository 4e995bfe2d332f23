package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafegrpc"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/bench/sim"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
)

// The overhead benchmarks of issue 7: each adapter beside its peer in the
// same run. The transport under test answers from memory, so ns/op and
// allocs/op above the bare row are the adapter's own cost. cmd/all turns
// them into the ratios of BENCHMARKS.md.

// stub answers every request with a canned 200 JSON response, reading and
// closing the request body as a real transport does.
type stub struct{}

const stubAnswer = `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

func (stub) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(stubAnswer)),
		ContentLength: int64(len(stubAnswer)),
		Request:       req,
	}, nil
}

// payload is a 1 KiB OpenAI-style chat request.
var payload = []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 1024-55) + `"}]}`)

func runHTTP(b *testing.B, rt http.RoundTripper) {
	req, err := http.NewRequest(http.MethodPost, "http://llm.local/v1/chat/completions", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	buf := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		r := req.Clone(req.Context())
		r.Body, _ = req.GetBody()
		resp, err := rt.RoundTrip(r)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

func sturdyHTTP(b *testing.B, opts ...httpmw.Option) *httpmw.Transport {
	tr, err := httpmw.NewTransport(stub{}, append([]httpmw.Option{
		httpmw.WithTier(degrade.Tier{Name: "primary"},
			httpmw.URL("a", "http://127.0.0.1:8001", nil), httpmw.URL("b", "http://127.0.0.2:8001", nil), httpmw.URL("c", "http://127.0.0.3:8001", nil),
		),
		httpmw.WithHealth(health.Config{}),
		httpmw.WithBalancer(balancer.Config{}),
	}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close() })
	return tr
}

// BenchmarkHTTP is the HTTP success path: POST 1 KiB JSON over an
// in-memory stub transport.
func BenchmarkHTTP(b *testing.B) {
	b.Run("bare", func(b *testing.B) { runHTTP(b, stub{}) })
	b.Run("failsafe-retry", func(b *testing.B) {
		runHTTP(b, failsafehttp.NewRoundTripper(stub{}, failsafehttp.NewRetryPolicyBuilder().Build()))
	})
	b.Run("failsafe-retry+breaker", func(b *testing.B) {
		runHTTP(b, failsafehttp.NewRoundTripper(stub{}, failsafehttp.NewRetryPolicyBuilder().Build(), circuitbreaker.NewWithDefaults[*http.Response]()))
	})
	b.Run("failsafe-hedge-idle", func(b *testing.B) {
		runHTTP(b, failsafehttp.NewRoundTripper(stub{}, hedgepolicy.NewWithDelay[*http.Response](time.Second)))
	})
	// Balancer (P2C Peak-EWMA over 3 endpoints) + health + failover.
	b.Run("sturdy", func(b *testing.B) { runHTTP(b, sturdyHTTP(b)) })
	b.Run("sturdy-hedge-idle", func(b *testing.B) {
		runHTTP(b, sturdyHTTP(b, httpmw.WithHedge(hedge.Config{Delay: time.Second})))
	})
}

// BenchmarkGRPC is a unary call over bufconn.
func BenchmarkGRPC(b *testing.B) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	answer := wrapperspb.Bytes([]byte(stubAnswer))
	sim.RegisterInfer(srv, func(context.Context, *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) { return answer, nil })
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	dial := func(opts ...grpc.DialOption) *grpc.ClientConn {
		cc, err := grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	run := func(b *testing.B, cc grpc.ClientConnInterface) {
		ctx := context.Background()
		in := wrapperspb.Bytes(payload)
		b.ReportAllocs()
		for b.Loop() {
			out := new(wrapperspb.BytesValue)
			if err := cc.Invoke(ctx, sim.InferMethod, in, out); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, dial()) })
	b.Run("failsafe-retry", func(b *testing.B) {
		run(b, dial(grpc.WithUnaryInterceptor(failsafegrpc.NewUnaryClientInterceptor[any](failsafegrpc.NewRetryPolicyBuilder[any]().Build()))))
	})
	b.Run("sturdy", func(b *testing.B) {
		cc := dial()
		c, err := grpcmw.New(grpcmw.WithEndpoints(grpcmw.Conn("a", cc), grpcmw.Conn("b", cc), grpcmw.Conn("c", cc)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		run(b, c)
	})
}

// plainRR is the round-robin a user writes: an atomic counter modulo n.
type plainRR struct {
	eps []sturdy.Endpoint
	n   atomic.Uint64
}

func (p *plainRR) Pick() *sturdy.Endpoint { return &p.eps[(p.n.Add(1)-1)%uint64(len(p.eps))] }

// BenchmarkBalancer is one Pick and its done call.
func BenchmarkBalancer(b *testing.B) {
	ctx := context.Background()
	out := sturdy.Outcome{Latency: time.Millisecond}
	for _, n := range []int{3, 10, 100, 1000} {
		eps := make([]sturdy.Endpoint, n)
		for i := range eps {
			eps[i] = sturdy.Endpoint{Name: fmt.Sprintf("ep-%d", i)}
		}
		b.Run(fmt.Sprintf("n=%d/plain-rr", n), func(b *testing.B) {
			p := &plainRR{eps: eps}
			b.ReportAllocs()
			for b.Loop() {
				if p.Pick() == nil {
					b.Fatal("nil")
				}
			}
		})
		for _, c := range []struct {
			name   string
			policy balancer.Policy
			health bool
			busy   bool
		}{
			{"sturdy-rr", balancer.RoundRobin, false, false},
			{"sturdy-wrr", balancer.WeightedRoundRobin, false, false},
			{"sturdy-least", balancer.LeastOutstanding, false, false},
			{"sturdy-least-busy", balancer.LeastOutstanding, false, true},
			{"sturdy-p2c", balancer.P2CPeakEWMA, false, false},
			{"sturdy-p2c+health", balancer.P2CPeakEWMA, true, false},
		} {
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				cfg := balancer.Config{Endpoints: eps, Policy: c.policy}
				if c.health {
					cfg.Health = must(health.New(health.Config{}))
				}
				bal := must(balancer.New(cfg))
				if c.busy {
					// One attempt in flight on every endpoint, so that
					// least-outstanding finds no idle endpoint to stop at
					// and scans the whole pool.
					for range n {
						if _, _, err := bal.Pick(ctx, nil); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					_, done, err := bal.Pick(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					done(out)
				}
			})
		}
	}
}
