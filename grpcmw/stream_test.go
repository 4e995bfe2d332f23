package grpcmw_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw"
)

func recvAll[T any](t *testing.T, recv func() (*T, error)) ([]*T, error) {
	t.Helper()
	var out []*T
	for {
		m, err := recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, m)
	}
}

func bodies(ms []*testpb.StreamingOutputCallResponse) []string {
	var s []string
	for _, m := range ms {
		s = append(s, string(m.GetPayload().GetBody()))
	}
	return s
}

func TestServerStreamFailsOverBeforeTheFirstMessage(t *testing.T) {
	a, b := startTCP(t, "a"), startTCP(t, "b")
	a.set(behavior{code: codes.Unavailable, failAfter: 0})
	c := newClient(t, insecureDial, roundRobin, grpcmw.WithFailover(noBudget(t, 3)),
		grpcmw.WithEndpoints(grpcmw.Target("a", a.addr), grpcmw.Target("b", b.addr)))
	st, err := testpb.NewTestServiceClient(c).StreamingOutputCall(context.Background(),
		&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("q")}})
	require.NoError(t, err)
	msgs, err := recvAll(t, st.Recv)
	require.NoError(t, err)
	assert.Equal(t, []string{"b:q", "b:q", "b:q"}, bodies(msgs))
	assert.Equal(t, int64(1), a.calls.Load())
	assert.Equal(t, int64(1), b.calls.Load())
}

func TestServerStreamErrorsAfterTheFirstMessageSurface(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable, failAfter: 1})
	c := newClient(t, roundRobin, grpcmw.WithFailover(noBudget(t, 3)),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))))
	st, err := testpb.NewTestServiceClient(c).StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	msgs, err := recvAll(t, st.Recv)
	assert.Equal(t, []string{"a:"}, bodies(msgs))
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Zero(t, b.calls.Load(), "failed over after a message reached the caller")
}

func TestStreamFailureBeforeAnyMessageIsAStatusError(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable, failAfter: 0})
	b.set(behavior{code: codes.Unavailable, failAfter: 0})
	c := newClient(t, roundRobin, grpcmw.WithFailover(noBudget(t, 3)),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))))
	st, err := testpb.NewTestServiceClient(c).StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	_, err = st.Recv()
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "2 attempts")
	_, err2 := st.Recv()
	assert.Equal(t, err, err2, "the stream's error is sticky")
}

func TestClientStreamReplaysOnFailover(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable})
	c := newClient(t, roundRobin, grpcmw.WithFailover(noBudget(t, 3)),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))))
	st, err := testpb.NewTestServiceClient(c).StreamingInputCall(context.Background())
	require.NoError(t, err)
	for _, body := range []string{"one", "two", "three"} {
		require.NoError(t, st.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte(body)}}))
	}
	resp, err := st.CloseAndRecv()
	require.NoError(t, err)
	assert.Equal(t, int32(len("onetwothree")), resp.GetAggregatedPayloadSize(), "b got every message, replayed")
	assert.Equal(t, int64(1), a.calls.Load())
	assert.Equal(t, int64(1), b.calls.Load())
}

func TestClientStreamPastTheReplayLimitCannotFailOver(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable})
	c := newClient(t, roundRobin, grpcmw.WithFailover(noBudget(t, 3)), grpcmw.WithStreamReplay(2, 1<<20),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))))
	st, err := testpb.NewTestServiceClient(c).StreamingInputCall(context.Background())
	require.NoError(t, err)
	for _, body := range []string{"one", "two", "three", "four"} {
		if err := st.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte(body)}}); err != nil {
			require.ErrorIs(t, err, io.EOF)
		}
	}
	_, err = st.CloseAndRecv()
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Zero(t, b.calls.Load())
}

func TestBidiStreamWithConcurrentSendAndRecv(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable, failAfter: 0})
	const n = 50
	// The sender may run ahead of the first response: keep all of it.
	c := newClient(t, roundRobin, grpcmw.WithFailover(noBudget(t, 3)), grpcmw.WithStreamReplay(n, 1<<20),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))))
	st, err := testpb.NewTestServiceClient(c).FullDuplexCall(context.Background())
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			err := st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte{byte('0' + i%10)}}})
			if err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
		_ = st.CloseSend()
	})
	msgs, err := recvAll(t, st.Recv)
	wg.Wait()
	require.NoError(t, err)
	require.Len(t, msgs, n)
	for i, m := range msgs {
		assert.Equal(t, "b:"+string(rune('0'+i%10)), string(m.GetPayload().GetBody()))
	}
}

func TestStreamHeaderDecidesAndTrailerIsTheWinners(t *testing.T) {
	a, b := startBuf(t, "a"), startBuf(t, "b")
	a.set(behavior{code: codes.Unavailable, failAfter: 0})
	c := newClient(t, roundRobin, grpcmw.WithFailover(noBudget(t, 3)),
		grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t)), grpcmw.Conn("b", b.dial(t))))
	st, err := testpb.NewTestServiceClient(c).StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	_, err = st.Header()
	require.NoError(t, err)
	msgs, err := recvAll(t, st.Recv)
	require.NoError(t, err)
	assert.Len(t, msgs, 3)
	assert.NotNil(t, st.Trailer())
}

func TestAbandonedStreamsReleaseOnCancel(t *testing.T) {
	a := startBuf(t, "a")
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
	stub := testpb.NewTestServiceClient(c)
	for i := range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		st, err := stub.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
		require.NoError(t, err)
		if i%2 == 0 {
			_, err = st.Recv() // committed, then abandoned
			require.NoError(t, err)
		}
		cancel() // grpc-go's rule: cancel or read to the end
		if i%2 == 1 {
			_, err = st.Recv()
			assert.Equal(t, codes.Canceled, status.Code(err))
		}
	}
	// goleak (TestMain) checks that nothing is left running.
}

func TestStreamRewriteAppliesToEveryMessage(t *testing.T) {
	p, f := startBuf(t, "p"), startBuf(t, "f")
	p.set(behavior{code: codes.Unavailable, failAfter: 0})
	c := newClient(t,
		grpcmw.WithTier(degrade.Tier{Name: "p", Model: "big"}, grpcmw.Conn("p", p.dial(t))),
		grpcmw.WithTier(degrade.Tier{Name: "f", Model: "small"}, grpcmw.Conn("f", f.dial(t))),
		grpcmw.WithModelRewrite(func(tier degrade.Tier, method string, r any) (any, error) {
			if !strings.HasSuffix(method, "/FullDuplexCall") {
				return r, nil
			}
			in := r.(*testpb.StreamingOutputCallRequest)
			return &testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: append([]byte(tier.Model+"/"), in.GetPayload().GetBody()...)}}, nil
		}))
	st, err := testpb.NewTestServiceClient(c).FullDuplexCall(context.Background())
	require.NoError(t, err)
	require.NoError(t, st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("1")}}))
	m, err := st.Recv()
	require.NoError(t, err)
	assert.Equal(t, "f:small/1", string(m.GetPayload().GetBody()))
	require.NoError(t, st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("2")}}))
	m, err = st.Recv()
	require.NoError(t, err)
	assert.Equal(t, "f:small/2", string(m.GetPayload().GetBody()))
	require.NoError(t, st.CloseSend())
	_, err = st.Recv()
	assert.ErrorIs(t, err, io.EOF)
}

func TestStreamDeadlineWhileDeciding(t *testing.T) {
	a := startBuf(t, "a")
	c := newClient(t, grpcmw.WithEndpoints(grpcmw.Conn("a", a.dial(t))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	st, err := testpb.NewTestServiceClient(c).FullDuplexCall(ctx)
	require.NoError(t, err)
	_, err = st.Recv() // the server never answers: nothing was sent
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
}
