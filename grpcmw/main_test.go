package grpcmw_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthsrv "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// behavior is what a test server does with each call.
type behavior struct {
	delay time.Duration // before answering a unary call
	code  codes.Code    // non-OK: fail with it
	// trailer is set on failures (e.g. grpc-retry-pushback-ms).
	trailer metadata.MD
	// failAfter is how many stream messages are sent before a stream
	// fails with code; negative: streams succeed whatever code says.
	failAfter int
	// header and okTrailer are added to the response headers and the
	// trailer of unary calls and server streams that succeed.
	header, okTrailer metadata.MD
}

// testServer is a grpc_testing.TestService with a scripted behavior, and
// a grpc.health.v1 server beside it.
type testServer struct {
	testpb.UnimplementedTestServiceServer
	id       string
	addr     string
	srv      *grpc.Server
	health   *healthsrv.Server
	lis      *bufconn.Listener // nil for TCP servers
	calls    atomic.Int64
	canceled atomic.Int64

	mu sync.Mutex
	b  behavior
}

func (s *testServer) set(b behavior) {
	s.mu.Lock()
	s.b = b
	s.mu.Unlock()
}

func (s *testServer) get() behavior {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b
}

func (s *testServer) fail(ctx context.Context, b behavior) error {
	if b.trailer != nil {
		_ = grpc.SetTrailer(ctx, b.trailer)
	}
	return status.Error(b.code, s.id+" says no")
}

func (s *testServer) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.calls.Add(1)
	b := s.get()
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			s.canceled.Add(1)
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if b.code != codes.OK {
		return nil, s.fail(ctx, b)
	}
	header, trailer := metadata.Pairs("server", s.id), metadata.Pairs("served-by", s.id)
	if b.header != nil || b.okTrailer != nil {
		header, trailer = metadata.Join(header, b.header), metadata.Join(trailer, b.okTrailer)
	}
	_ = grpc.SetHeader(ctx, header)
	_ = grpc.SetTrailer(ctx, trailer)
	return &testpb.SimpleResponse{ServerId: s.id, Payload: req.GetPayload()}, nil
}

func (s *testServer) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, st testpb.TestService_StreamingOutputCallServer) error {
	s.calls.Add(1)
	b := s.get()
	n := len(req.GetResponseParameters())
	if n == 0 {
		n = 3
	}
	if b.header != nil {
		_ = st.SetHeader(b.header)
	}
	if b.okTrailer != nil && (b.code == codes.OK || b.failAfter < 0) {
		st.SetTrailer(b.okTrailer)
	}
	for i := range n {
		if b.code != codes.OK && b.failAfter >= 0 && i == b.failAfter {
			return s.fail(st.Context(), b)
		}
		body := append([]byte(s.id+":"), req.GetPayload().GetBody()...)
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *testServer) StreamingInputCall(st testpb.TestService_StreamingInputCallServer) error {
	s.calls.Add(1)
	b := s.get()
	var size int32
	for {
		m, err := st.Recv()
		if err != nil {
			break
		}
		size += int32(len(m.GetPayload().GetBody()))
	}
	if b.code != codes.OK {
		return s.fail(st.Context(), b)
	}
	return st.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: size})
}

func (s *testServer) FullDuplexCall(st testpb.TestService_FullDuplexCallServer) error {
	s.calls.Add(1)
	b := s.get()
	for i := 0; ; i++ {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		if b.code != codes.OK && i == max(b.failAfter, 0) {
			return s.fail(st.Context(), b)
		}
		body := append([]byte(s.id+":"), m.GetPayload().GetBody()...)
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
}

// newTestServer makes a server; withHealth adds the grpc.health.v1
// service.
func newTestServer(id string, withHealth bool, opts ...grpc.ServerOption) *testServer {
	s := &testServer{id: id, srv: grpc.NewServer(opts...), health: healthsrv.NewServer()}
	testpb.RegisterTestServiceServer(s.srv, s)
	if withHealth {
		healthpb.RegisterHealthServer(s.srv, s.health)
	}
	return s
}

// startTCP serves on a loopback TCP port until the test ends.
func startTCP(t testing.TB, id string, opts ...grpc.ServerOption) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(id, true, opts...)
	s.addr = lis.Addr().String()
	go func() { _ = s.srv.Serve(lis) }()
	t.Cleanup(s.srv.Stop)
	return s
}

// startBuf serves on an in-memory listener until the test ends; dial it
// with s.dial.
func startBuf(t testing.TB, id string) *testServer {
	t.Helper()
	return serveBuf(t, newTestServer(id, true))
}

func serveBuf(t testing.TB, s *testServer) *testServer {
	t.Helper()
	s.lis = bufconn.Listen(1 << 20)
	go func() { _ = s.srv.Serve(s.lis) }()
	t.Cleanup(s.srv.Stop)
	return s
}

// dial returns a conn to a bufconn server, closed when the test ends.
func (s *testServer) dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+s.id,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// eventually polls cond every few milliseconds for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func req(body string) *testpb.SimpleRequest {
	return &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(body)}}
}
