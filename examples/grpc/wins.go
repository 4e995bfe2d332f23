package main

import (
	"context"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// winCounter is an OpenTelemetry span processor that counts the winning
// "sturdy.attempt" spans by kind: how many calls a retry or a hedge
// answered. It reads what grpcmw records on every attempt span
// (sturdy.attempt.kind and sturdy.attempt.won), so the example needs no
// hook of its own to tell a hedge that won from one that lost.
type winCounter struct {
	first, retry, hedge atomic.Int64
}

var _ sdktrace.SpanProcessor = (*winCounter)(nil)

func (w *winCounter) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() != "sturdy.attempt" {
		return
	}
	var kind string
	var won bool
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case "sturdy.attempt.kind":
			kind = kv.Value.AsString()
		case "sturdy.attempt.won":
			won = kv.Value.AsBool()
		}
	}
	if !won {
		return
	}
	switch kind {
	case "first":
		w.first.Add(1)
	case "retry":
		w.retry.Add(1)
	case "hedge":
		w.hedge.Add(1)
	}
}

func (w *winCounter) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (w *winCounter) Shutdown(context.Context) error                  { return nil }
func (w *winCounter) ForceFlush(context.Context) error                { return nil }
