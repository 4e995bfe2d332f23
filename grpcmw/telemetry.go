package grpcmw

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/internal/telemetry"
)

// Scope is the OpenTelemetry instrumentation scope of grpcmw's spans and
// metrics.
const Scope = "github.com/sturdyai/sturdy/grpcmw"

type telemetryConfig struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider sets where the "sturdy.call" and "sturdy.attempt"
// spans go. The default is otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.telemetry.tp = tp })
}

// WithMeterProvider sets where the sturdy.* metrics go. The default is
// otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.telemetry.mp = mp })
}

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

// recordServed records a call that a tier answered.
func (c *Client) recordServed(tc telemetry.Call, s *degrade.Served) {
	name := ""
	if s.Attempt.Endpoint != nil {
		name = s.Attempt.Endpoint.Name
	}
	c.tel.RecordCall(tc, s.Tier, name, sturdy.Success, s.Attempt.N)
}

// recordFailed records a call that failed with err (a *StatusError).
func (c *Client) recordFailed(tc telemetry.Call, err error) {
	se, ok := errors.AsType[*sturdy.Error](err)
	if !ok {
		c.tel.RecordCall(tc, -1, "", sturdy.ClassOf(err), 0)
		return
	}
	c.tel.RecordCall(tc, -1, se.Endpoint, se.Class, len(se.Attempts))
}
