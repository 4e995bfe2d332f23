package grpcmw

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/chain"
	"github.com/sturdyai/sturdy/internal/telemetry"
)

// Scope is the OpenTelemetry instrumentation scope of grpcmw's spans and
// metrics.
const Scope = "github.com/sturdyai/sturdy/grpcmw"

var keyMethod = attribute.Key("rpc.method")

// startCall starts the call's span; the method (bounded: it names a
// service's RPC) is put on it when it records.
func (c *Client) startCall(ctx context.Context, method string) (context.Context, telemetry.Call) {
	ctx, tc := c.tel.StartCall(ctx)
	if sp := tc.Span(); sp.IsRecording() {
		sp.SetAttributes(keyMethod.String(method))
	}
	return ctx, tc
}

// recordFirstByte records the time to first byte of a call that a tier
// answered: its winning attempt's end (a unary reply, a stream's first
// message or headers).
func (c *Client) recordFirstByte(tc telemetry.Call, s *chain.Served) {
	c.tel.RecordFirstByte(tc, s.Outcome().End, s.Tier)
}

// recordServed records the whole of a call that a tier answered, once
// its result is delivered (a unary reply, a stream finished), with class
// the stream's final outcome.
func (c *Client) recordServed(tc telemetry.Call, s *chain.Served, class sturdy.Class) {
	name := ""
	a := s.Attempt()
	if a.Endpoint != nil {
		name = a.Endpoint.Name
	}
	c.tel.RecordCall(tc, s.Tier, name, class, a.N)
}

// recordFailed records a call that failed with err (a *StatusError).
func (c *Client) recordFailed(tc telemetry.Call, err error) {
	se, ok := errors.AsType[*sturdy.Error](err)
	if !ok {
		c.tel.RecordCall(tc, -1, "", sturdy.ClassOf(err), 0)
		return
	}
	tier := -1 // the deciding attempt's tier; none if no attempt went out
	if t, ok := c.tierOf[se.Endpoint]; ok {
		tier = t
	}
	c.tel.RecordCall(tc, tier, se.Endpoint, se.Class, len(se.Attempts))
}
