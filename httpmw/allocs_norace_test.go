//go:build !race

package httpmw

import (
	"io"
	"net/http"
	"testing"

	"github.com/sturdyai/sturdy/degrade"
)

// The skeleton (every default off: BenchmarkRoundTripSturdyWithout) makes
// no more allocations per call than the floor, the least a transport that
// replaces the caller's credential must make (BenchmarkRoundTripFloor):
// the attempt's request and body wrapper in one, and the header map. (The
// race detector makes sync.Pool drop values, hence !race.)
func TestSkeletonAllocatesNoMoreThanTheFloor(t *testing.T) {
	tr, err := NewTransport(stubTransport{}, append([]Option{WithTier(degrade.Tier{Name: "primary", Model: "m"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
		URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
	), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil))}, skeletonOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	req := benchRequest(t)
	buf := make([]byte, 1024)
	allocs := func(rt http.RoundTripper) float64 {
		return testing.AllocsPerRun(200, func() {
			r := req.Clone(req.Context())
			r.Body, _ = req.GetBody()
			resp, err := rt.RoundTrip(r)
			if err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := resp.Body.Read(buf); err == io.EOF {
					break
				}
			}
			_ = resp.Body.Close()
		})
	}
	floor, skeleton := allocs(floorTransport{}), allocs(tr)
	if skeleton > floor {
		t.Errorf("the skeleton makes %v allocations per call, the floor %v", skeleton, floor)
	}
}
