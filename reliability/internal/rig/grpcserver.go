package rig

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthsrv "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPCServer is grpc-go's interop TestService (and the grpc.health.v1
// service) on a loopback port, with a settable behaviour. It records the
// credentials ("authorization" and "api-key" metadata) it receives.
type GRPCServer struct {
	testpb.UnimplementedTestServiceServer
	ID     string
	Addr   string
	Health *healthsrv.Server
	Calls  atomic.Int64
	// Conns counts the server's connections (Opened, Open).
	Conns Conns

	srv   *grpc.Server
	wg    sync.WaitGroup
	mu    sync.Mutex
	delay time.Duration
	code  codes.Code
	creds map[string]bool
}

// StartGRPC serves on 127.0.0.1:<random port>.
func StartGRPC(id string) (*GRPCServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &GRPCServer{ID: id, Addr: ln.Addr().String(), srv: grpc.NewServer(), Health: healthsrv.NewServer(), creds: map[string]bool{}}
	testpb.RegisterTestServiceServer(s.srv, s)
	healthpb.RegisterHealthServer(s.srv, s.Health)
	s.wg.Go(func() { _ = s.srv.Serve(&countingListener{Listener: ln, c: &s.Conns}) })
	return s, nil
}

// Set makes every later call wait delay, then fail with code unless it is
// OK.
func (s *GRPCServer) Set(delay time.Duration, code codes.Code) {
	s.mu.Lock()
	s.delay, s.code = delay, code
	s.mu.Unlock()
}

// Credentials returns the distinct credentials the server received.
func (s *GRPCServer) Credentials() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.creds))
	for c := range s.creds {
		out = append(out, c)
	}
	return out
}

// Stop stops the server at once, closing every connection.
func (s *GRPCServer) Stop() {
	s.srv.Stop()
	s.wg.Wait()
}

func (s *GRPCServer) begin(ctx context.Context) (time.Duration, codes.Code) {
	s.Calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{"authorization", "api-key"} {
		for _, v := range md.Get(k) {
			s.creds[v] = true
		}
	}
	return s.delay, s.code
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// UnaryCall echoes the payload and names the server.
func (s *GRPCServer) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	d, code := s.begin(ctx)
	if err := wait(ctx, d); err != nil {
		return nil, err
	}
	if code != codes.OK {
		return nil, status.Error(code, s.ID+" fails on purpose")
	}
	body := req.GetPayload().GetBody()
	if n := req.GetResponseSize(); n > 0 {
		body = make([]byte, n)
	}
	return &testpb.SimpleResponse{ServerId: s.ID, Payload: &testpb.Payload{Body: body}}, nil
}

// StreamingOutputCall sends one message per response parameter (3 when
// none), each after its IntervalUs.
func (s *GRPCServer) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, st testpb.TestService_StreamingOutputCallServer) error {
	d, code := s.begin(st.Context())
	if err := wait(st.Context(), d); err != nil {
		return err
	}
	if code != codes.OK {
		return status.Error(code, s.ID+" fails on purpose")
	}
	params := req.GetResponseParameters()
	if len(params) == 0 {
		params = make([]*testpb.ResponseParameters, 3)
	}
	for _, p := range params {
		if err := wait(st.Context(), time.Duration(p.GetIntervalUs())*time.Microsecond); err != nil {
			return err
		}
		body := append([]byte(s.ID+":"), req.GetPayload().GetBody()...)
		if n := p.GetSize(); n > 0 {
			body = make([]byte, n)
		}
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

// countingListener counts the connections it accepts and their closes.
type countingListener struct {
	net.Listener
	c *Conns
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.opened.Add(1)
	return &countedConn{Conn: conn, c: l.c}, nil
}

type countedConn struct {
	net.Conn
	c    *Conns
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.c.closed.Add(1) })
	return c.Conn.Close()
}
