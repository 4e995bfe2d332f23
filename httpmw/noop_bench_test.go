package httpmw

import (
	"net/http"
	"testing"

	mnoop "go.opentelemetry.io/otel/metric/noop"
	tnoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sturdyai/sturdy/degrade"
)

func BenchmarkRoundTripSturdyNoopOTel(b *testing.B) {
	tr, err := NewTransport(stubTransport{}, WithTier(degrade.Tier{Name: "primary", Model: "m"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
		URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
	), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil)),
		WithTracerProvider(tnoop.NewTracerProvider()), WithMeterProvider(mnoop.NewMeterProvider()))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	runBench(b, tr)
}
