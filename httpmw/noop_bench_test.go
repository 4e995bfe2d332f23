package httpmw

import (
	"net/http"
	"testing"

	mnoop "go.opentelemetry.io/otel/metric/noop"
	tnoop "go.opentelemetry.io/otel/trace/noop"
)

func BenchmarkRoundTripSturdyNoopOTel(b *testing.B) {
	tr, err := NewTransport(stubTransport{}, WithTier(Tier{Name: "primary", Model: "m", Endpoints: []Endpoint{
		{Name: "a", URL: "http://127.0.0.1:1", Header: http.Header{"Authorization": {"Bearer a-key"}}},
		{Name: "b", URL: "http://127.0.0.1:2/openai", Header: http.Header{"Api-Key": {"b-key"}}},
	}}), WithTier(Tier{Name: "fallback", Model: "small", Endpoints: []Endpoint{{Name: "c", URL: "http://127.0.0.1:3"}}}),
		WithTracerProvider(tnoop.NewTracerProvider()), WithMeterProvider(mnoop.NewMeterProvider()))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	runBench(b, tr)
}
