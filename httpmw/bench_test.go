package httpmw

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/sturdyai/sturdy/degrade"
)

// stubTransport answers every request with a canned 200 JSON response,
// without a network, reading and closing the request body as a real
// transport does.
type stubTransport struct{}

const stubAnswer = `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

func (stubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(stubAnswer)),
		ContentLength: int64(len(stubAnswer)),
		Request:       req,
	}, nil
}

func benchRequest(b *testing.B) *http.Request {
	payload := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 1024-55) + `"}]}`)
	req, err := http.NewRequest(http.MethodPost, "http://llm.local/v1/chat/completions", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer caller-key")
	return req
}

func runBench(b *testing.B, rt http.RoundTripper) {
	req := benchRequest(b)
	buf := make([]byte, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := req.Clone(req.Context())
		r.Body, _ = req.GetBody()
		resp, err := rt.RoundTrip(r)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		_ = resp.Body.Close()
	}
}

func BenchmarkRoundTripStub(b *testing.B) { runBench(b, stubTransport{}) }

func BenchmarkRoundTripSturdy(b *testing.B) {
	tr, err := NewTransport(stubTransport{}, WithTier(degrade.Tier{Name: "primary", Model: "m"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
		URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
	), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	runBench(b, tr)
}

// floorTransport does the least a transport that keeps the RoundTripper
// contract and replaces the caller's credential must do per request,
// before any policy: a request of its own with its own URL (never the
// caller's), and a header map of its own without the caller's credential
// and with the endpoint's. It then calls the stub. BenchmarkRoundTripFloor
// minus BenchmarkRoundTripStub is that floor, for comparison with
// BenchmarkRoundTripSturdy in the same run.
type floorTransport struct{ stubTransport }

var floorKey = []string{"Bearer a-key"} // shared, as an endpoint's header values are

func (f floorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := new(outRequest)
	o.r = *req
	o.u = *req.URL
	o.r.URL = &o.u
	o.u.Host = "127.0.0.1:1"
	h := maps.Clone(req.Header)
	delete(h, "Authorization")
	h["Authorization"] = floorKey
	o.r.Header = h
	return f.stubTransport.RoundTrip(&o.r)
}

func BenchmarkRoundTripFloor(b *testing.B) { runBench(b, floorTransport{}) }
