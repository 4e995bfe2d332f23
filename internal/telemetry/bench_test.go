package telemetry

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
)

// attemptCtx stands in for the attempt's own context (internal/attempt),
// one hop between the hooks and the call's context, as in the adapters.
type attemptCtx struct{ context.Context }

// BenchmarkCall is one call's telemetry, served by its first attempt, in
// the order the adapters run it: StartCallAt, the attempt's Start and End
// hooks, RecordFirstByte, RecordCall, Call.End.
//
//   - quiet: the global providers, never set (the program does not use
//     OpenTelemetry), and no span in the caller's context;
//   - quiet-server-ctx: the same under a context as deep as a net/http
//     server request's (a cancel context under four values), which every
//     look into the context walks;
//   - sdk: an SDK TracerProvider (sampling every span) and MeterProvider.
func BenchmarkCall(b *testing.B) {
	sdk := func(b *testing.B) Config {
		tp := sdktrace.NewTracerProvider()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		return Config{TracerProvider: tp, MeterProvider: mp}
	}
	type key int
	server, cancel := context.WithCancel(context.Background())
	defer cancel()
	for k := range key(4) {
		server = context.WithValue(server, k, k)
	}
	for _, bc := range []struct {
		name   string
		cfg    func(*testing.B) Config
		parent context.Context
	}{
		{"quiet", func(*testing.B) Config { return Config{} }, context.Background()},
		{"quiet-server-ctx", func(*testing.B) Config { return Config{} }, server},
		{"sdk", sdk, context.Background()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg(b)
			cfg.Tiers = []Tier{{Name: "primary", Endpoints: []string{"a"}}}
			tel, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Close()
			h := tel.Hooks()
			a := attempt.Info{Endpoint: &sturdy.Endpoint{Name: "a"}, Kind: sturdy.First, N: 1, TierName: "primary"}
			now := time.Now()
			o := sturdy.Outcome{Class: sturdy.Success, Latency: time.Millisecond, End: now.Add(time.Millisecond)}
			actx := &attemptCtx{}
			parent := bc.parent
			b.ReportAllocs()
			for b.Loop() {
				ctx, call := tel.StartCallAt(parent, now)
				actx.Context = ctx
				hctx := h.Start(actx, a)
				h.End(hctx, a, o, true)
				tel.RecordFirstByte(call, o.End, 0)
				tel.RecordCall(call, 0, "a", sturdy.Success, 1)
				call.End()
			}
		})
	}
}
