package httpmw

import (
	"net/http"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/orca"
)

// loadFormat asks a server for a load report in the TEXT form, which vLLM
// and Triton both send and internal/orca reads without allocating.
var loadFormat = []string{"TEXT"}

// askLoadReports adds the request header that asks for load reports to
// the endpoint's headers, unless the endpoint's Header already asks for
// a format of its own.
func (ep *endpoint) askLoadReports() {
	for _, kv := range ep.header {
		if kv.key == orca.FormatHeader {
			return
		}
	}
	ep.header = append(ep.header, headerKV{key: orca.FormatHeader, values: loadFormat})
}

// loadReport reads the load report of resp (nil for none, or one that is
// malformed): Endpoint-Load-Metrics in any of its forms, else
// Endpoint-Load-Metrics-Bin.
func loadReport(resp *http.Response) *sturdy.LoadReport {
	if resp == nil {
		return nil
	}
	var r sturdy.LoadReport
	var ok bool
	if v := resp.Header[orca.Header]; len(v) == 1 {
		r, ok = orca.Parse(v[0])
	} else if v := resp.Header[orca.HeaderBin]; len(v) == 1 {
		r, ok = orca.ParseBase64(v[0])
	}
	if !ok {
		return nil
	}
	return &r
}
