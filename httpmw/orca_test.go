package httpmw

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	v3orcapb "github.com/cncf/xds/go/xds/data/orca/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
)

// reporter is a vLLM-like server: it answers at once and, when asked
// (Endpoint-Load-Metrics-Format), reports a queue of its own.
type reporter struct {
	report string // the Endpoint-Load-Metrics value, or "BIN-HEADER:" + base64
	delay  time.Duration
	mu     sync.Mutex
	asked  []string // the format each request asked for
	calls  int
}

func (s *reporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	f := r.Header.Get("Endpoint-Load-Metrics-Format")
	s.mu.Lock()
	s.asked = append(s.asked, f)
	s.calls++
	s.mu.Unlock()
	if f != "" {
		if b, ok := cutPrefix(s.report, "BIN-HEADER:"); ok {
			w.Header().Set("Endpoint-Load-Metrics-Bin", b)
		} else {
			w.Header().Set("Endpoint-Load-Metrics", s.report)
		}
	}
	time.Sleep(s.delay) // a real server's service time, on loopback
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"ok"}}]}`)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// With WithLoadReports the Transport asks every endpoint for reports and
// P2C prices them: a replica reporting a long queue (in any of the
// header's forms) gets little of the traffic, where without the option
// nothing is asked and the replicas share the calls.
func TestLoadReportsSteerP2C(t *testing.T) {
	// A queue of 50 in each form; the idle replica reports a queue of 0.
	pb, err := proto.Marshal(&v3orcapb.OrcaLoadReport{NamedMetrics: map[string]float64{"num_requests_waiting": 50}})
	require.NoError(t, err)
	bin := base64.StdEncoding.EncodeToString(pb)
	for _, busyReport := range []string{
		"TEXT named_metrics.kv_cache_usage_perc=0.5, named_metrics.num_requests_waiting=50",
		`JSON {"named_metrics": {"num_requests_waiting": 50.0}}`,
		"BIN " + bin,
		"BIN-HEADER:" + bin,
	} {
		t.Run(busyReport[:4], func(t *testing.T) {
			for _, on := range []bool{true, false} {
				busy := &reporter{report: busyReport}
				busy.delay = 5 * time.Millisecond
				idle := &reporter{report: "TEXT named_metrics.num_requests_waiting=0, named_metrics.kv_cache_usage_perc=0.1", delay: 5 * time.Millisecond}
				sb, si := httptest.NewServer(busy), httptest.NewServer(idle)
				defer sb.Close()
				defer si.Close()
				opts := []Option{WithEndpoints(URL("busy", sb.URL, nil), URL("idle", si.URL, nil)),
					WithBalancer(balancer.Config{Seed: 1})}
				if on {
					opts = append(opts, WithLoadReports())
				}
				tr, err := NewTransport(newBase(t), opts...)
				require.NoError(t, err)
				// 8 callers at once: without reports, attempts in flight
				// spread the calls over both replicas.
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for range 25 {
							resp, err := tr.RoundTrip(chatReq(t, "m", false))
							if !assert.NoError(t, err) {
								return
							}
							_, _ = io.Copy(io.Discard, resp.Body)
							_ = resp.Body.Close()
						}
					})
				}
				wg.Wait()
				_ = tr.Close()
				share := float64(busy.calls) / 200
				if on {
					assert.Less(t, share, 0.1, "busy replica's share with reports")
					for _, f := range append(busy.asked, idle.asked...) {
						require.Equal(t, "TEXT", f, "every request asks for a TEXT report")
					}
				} else {
					assert.Greater(t, share, 0.2, "busy replica's share without reports")
					for _, f := range append(busy.asked, idle.asked...) {
						require.Empty(t, f, "nothing is asked without WithLoadReports")
					}
				}
			}
		})
	}
}

// An endpoint's own Header may ask for another format; the Transport
// then leaves it alone.
func TestLoadReportsKeepEndpointFormat(t *testing.T) {
	s := &reporter{report: `JSON {"named_metrics": {"num_requests_waiting": 1.0}}`}
	srv := httptest.NewServer(s)
	defer srv.Close()
	tr := newTr(t, WithEndpoints(URL("a", srv.URL, http.Header{"Endpoint-Load-Metrics-Format": {"JSON"}})), WithLoadReports())
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, []string{"JSON"}, s.asked)
}

func TestLoadReportMalformedIsIgnored(t *testing.T) {
	for _, h := range []http.Header{
		{"Endpoint-Load-Metrics": {"TEXT named_metrics.num_requests_waiting=-3"}},
		{"Endpoint-Load-Metrics": {"TEXT a=1", "TEXT b=2"}}, // two reports: neither is trusted
		{"Endpoint-Load-Metrics-Bin": {"%%%"}},
		{},
	} {
		assert.Nil(t, loadReport(&http.Response{Header: h}), "%v", h)
	}
	assert.Nil(t, loadReport(nil))
	r := loadReport(&http.Response{Header: http.Header{"Endpoint-Load-Metrics": {"TEXT named_metrics.num_requests_waiting=3"}}})
	require.NotNil(t, r)
	assert.Equal(t, 3.0, r.Queue)
}

// reportingStub is stubTransport with a vLLM load report on every answer.
type reportingStub struct{}

func (reportingStub) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := stubTransport{}.RoundTrip(req)
	resp.Header["Endpoint-Load-Metrics"] = []string{"TEXT named_metrics.kv_cache_usage_perc=0.3, named_metrics.num_requests_waiting=2"}
	return resp, err
}

// BenchmarkRoundTripSturdyLoadReports is BenchmarkRoundTripSturdy with
// WithLoadReports and a report on every answer: what asking for reports
// (a header map of the attempt's own) and reading them cost.
func BenchmarkRoundTripSturdyLoadReports(b *testing.B) {
	tr, err := NewTransport(reportingStub{}, WithTier(degrade.Tier{Name: "primary", Model: "m"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
		URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
	), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil)), WithLoadReports())
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	runBench(b, tr)
}
