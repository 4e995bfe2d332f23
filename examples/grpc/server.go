package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// modelServer is a stand-in inference server: UnaryCall answers after its
// latency (plus, now and then, a stall), StreamingOutputCall sends a reply
// word by word. It serves grpc.health.v1 as well, and can drain: its health
// goes NOT_SERVING at once and, after a grace period, it refuses calls with
// UNAVAILABLE, as a server being rolled out does.
type modelServer struct {
	testpb.UnimplementedTestServiceServer

	name      string
	latency   time.Duration
	stall     time.Duration // added to a share stallRate of the calls
	stallRate float64

	refusing atomic.Bool
	served   atomic.Int64

	addr   string
	srv    *grpc.Server
	health *grpchealth.Server
}

// start serves s on a loopback port.
func (s *modelServer) start() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.addr = lis.Addr().String()
	s.srv = grpc.NewServer()
	s.health = grpchealth.NewServer()
	testpb.RegisterTestServiceServer(s.srv, s)
	healthpb.RegisterHealthServer(s.srv, s.health)
	go func() { _ = s.srv.Serve(lis) }()
	return nil
}

// stop closes every connection and waits for the handlers.
func (s *modelServer) stop() {
	if s.srv != nil {
		s.srv.Stop()
	}
}

// drain marks the server NOT_SERVING and, after grace, makes it refuse calls.
func (s *modelServer) drain(ctx context.Context, grace time.Duration) {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	select {
	case <-time.After(grace):
		s.refusing.Store(true)
	case <-ctx.Done():
	}
}

// resume serves calls again and marks the server SERVING.
func (s *modelServer) resume() {
	s.refusing.Store(false)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
}

func (s *modelServer) describe() string {
	d := fmt.Sprintf("%-8s %s  latency %v", s.name, s.addr, s.latency)
	if s.stallRate > 0 {
		d += fmt.Sprintf(", %.0f%% of calls stall %v more", 100*s.stallRate, s.stall)
	}
	return d
}

func (s *modelServer) wait(ctx context.Context) error {
	d := s.latency
	if s.stallRate > 0 && rand.Float64() < s.stallRate {
		d += s.stall
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

// UnaryCall answers a prompt (the request payload) with the server's name.
func (s *modelServer) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s.refusing.Load() {
		return nil, status.Error(codes.Unavailable, s.name+" is draining")
	}
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	s.served.Add(1)
	return &testpb.SimpleResponse{
		ServerId: s.name,
		Payload:  &testpb.Payload{Body: []byte("answer from " + s.name)},
	}, nil
}

// StreamingOutputCall streams a reply one word per message, as a model
// streams tokens; it sends as many words as the request has response
// parameters.
func (s *modelServer) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	if s.refusing.Load() {
		return status.Error(codes.Unavailable, s.name+" is draining")
	}
	if err := s.wait(stream.Context()); err != nil {
		return err
	}
	words := strings.Fields("this is " + s.name + " streaming its answer word by word")
	for i := range req.GetResponseParameters() {
		w := words[i%len(words)]
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: []byte(w)}}); err != nil {
			return err
		}
	}
	s.served.Add(1)
	return nil
}
