package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
	"github.com/sturdyai/sturdy/sturdytest"
)

// scanner looks for secrets in every string it is shown.
type scanner struct {
	t       *testing.T
	secrets []string
	scanned map[string]int // by kind
}

func (s *scanner) scan(kind, where, v string) {
	s.scanned[kind]++
	for _, sec := range s.secrets {
		if strings.Contains(v, sec) {
			s.t.Errorf("%s %s contains a secret (%.20s…): %q", kind, where, sec, v)
		}
	}
}

func (s *scanner) attrs(kind, where string, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		s.scan(kind, where+"/"+string(kv.Key), string(kv.Key)+"="+kv.Value.Emit())
	}
}

func (s *scanner) spans(spans []sdktrace.ReadOnlySpan) {
	for _, sp := range spans {
		s.scan("span name", sp.Name(), sp.Name())
		s.attrs("span attribute", sp.Name(), sp.Attributes())
		s.attrs("resource attribute", sp.Name(), sp.Resource().Attributes())
		s.scan("span status", sp.Name(), sp.Status().Description)
		for _, ev := range sp.Events() {
			s.scan("span event", sp.Name(), ev.Name)
			s.attrs("span event attribute", sp.Name()+"/"+ev.Name, ev.Attributes)
		}
		for _, l := range sp.Links() {
			s.attrs("span link attribute", sp.Name(), l.Attributes)
		}
	}
}

func (s *scanner) metrics(rm *metricdata.ResourceMetrics) {
	s.attrs("resource attribute", "metrics", rm.Resource.Attributes())
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			s.scan("metric name", m.Name, m.Name+" "+m.Description+" "+m.Unit)
			var sets []attribute.Set
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			default:
				s.t.Errorf("metric %s has data of type %T the scan does not know", m.Name, m.Data)
			}
			for _, set := range sets {
				s.attrs("metric label", m.Name, set.ToSlice())
			}
		}
	}
}

// captureLogs sends the standard logger, slog's default and otel's error
// handler to one buffer until the test ends. (The library itself imports
// neither log nor slog; this catches anything that would print.)
func captureLogs(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	w := &lockedWriter{w: &buf}
	log.SetOutput(w)
	prevSlog := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(w, nil)))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { fmt.Fprintln(w, err) }))
	t.Cleanup(func() {
		log.SetOutput(os.Stderr)
		slog.SetDefault(prevSlog)
	})
	return &buf
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestNoSecretInTelemetryErrorsOrLogs runs calls through both adapters
// that fail in every way (401 for a bad key, 503, refused, a fallback with
// a model rewrite, a malformed body, hedges, a total failure) with a
// recognisable prompt, body and keys, then scans every span name,
// attribute, event and status, every metric name and label, every error
// string and every log line: none may contain a key, the prompt or the
// body.
func TestNoSecretInTelemetryErrorsOrLogs(t *testing.T) {
	fig := figure{Order: 430, Fault: "secrets in telemetry, errors and logs", Adapter: "both",
		Does: "spans, metrics and errors carry endpoint, tier, class and kind only; no body, prompt or credential", OpenConn: -1}
	recordAtEnd(t, &fig)
	logs := captureLogs(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })

	body := string(chatBody("big", false))
	sc := &scanner{t: t, scanned: map[string]int{}, secrets: []string{prompt, body, "sk-caller", "0123456789secret", "PROMPT-"}}
	var errs []string

	// HTTP: a wants another key (401), b is down (503), r refuses; the
	// fallback tier's c answers, after a model rewrite.
	a, _ := rig.StartLLM(sturdytest.Config{Name: "a", RequiredAPIKey: "sk-other-0123456789secret"})
	b, _ := rig.StartLLM(sturdytest.Config{Name: "b", Down: sturdytest.Down503})
	c, _ := rig.StartLLM(sturdytest.Config{Name: "c", Latency: sturdytest.Latency{Median: time.Millisecond, Sigma: 1}})
	for _, l := range []*rig.LLM{a, b, c} {
		t.Cleanup(l.Close)
	}
	refused := closedURL(t)
	hdr := func(n string) http.Header {
		return http.Header{"Authorization": {"Bearer " + key(n)}, "Api-Key": {key(n)}}
	}
	tr, err := httpmw.NewTransport(&http.Transport{},
		httpmw.WithTier(degrade.Tier{Name: "tier0", Model: "big"},
			httpmw.URL("a", a.URL(), hdr("a")), httpmw.URL("b", b.URL(), hdr("b")), httpmw.URL("r", refused, hdr("r"))),
		httpmw.WithTier(degrade.Tier{Name: "tier1", Model: "small"}, httpmw.URL("c", c.URL(), hdr("c"))),
		httpmw.WithHedge(hedge.Config{Delay: time.Millisecond, BudgetRatio: 1}),
		httpmw.WithTracerProvider(tp), httpmw.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close(); tr.CloseIdleConnections() })
	client := &http.Client{Transport: tr}
	send := func(req *http.Request) {
		fig.Calls++
		resp, err := client.Do(req)
		if err != nil {
			fig.Errors++
			errs = append(errs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for k, v := range resp.Header {
			if strings.HasPrefix(k, "Sturdy-") {
				errs = append(errs, k+": "+strings.Join(v, ","))
			}
		}
		if resp.StatusCode == http.StatusOK {
			fig.OK++
		} else {
			fig.Errors++
		}
	}
	for i := range 30 {
		send(chatReq(context.Background(), "big", i%2 == 1))
	}
	for _, bad := range []string{`{"model":"big","messages":"` + prompt + `"`, `not json ` + prompt} {
		req, _ := http.NewRequest(http.MethodPost, chatURL, strings.NewReader(bad))
		req.Header.Set("Authorization", "Bearer sk-caller-must-never-leave")
		send(req)
	}
	c.SetDown(sturdytest.DownReset) // now every endpoint fails
	for range 5 {
		send(chatReq(context.Background(), "big", false))
	}

	// gRPC: a fails UNAVAILABLE, b RESOURCE_EXHAUSTED, c answers; then all fail.
	g := newGRPCRig(t, [][]string{{"a", "b"}, {"c"}}, []string{"big", "small"}, append(grpcOpts(t),
		grpcmw.WithTracerProvider(tp), grpcmw.WithMeterProvider(mp))...)
	t.Cleanup(func() { g.close() })
	g.servers["a"].Set(0, codes.Unavailable)
	g.servers["b"].Set(0, codes.ResourceExhausted)
	gcall := func() {
		fig.Calls++
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := g.stub.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(body)}})
		if err != nil {
			fig.Errors++
			errs = append(errs, err.Error(), fmt.Sprintf("%+v", err))
			return
		}
		fig.OK++
	}
	for range 10 {
		gcall()
	}
	g.servers["c"].Set(0, codes.Internal)
	for range 5 {
		gcall()
	}

	sc.spans(sr.Ended())
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sc.metrics(&rm)
	for _, e := range errs {
		sc.scan("error string", "", e)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		sc.scan("log line", "", line)
	}
	if sc.scanned["span attribute"] < 100 || sc.scanned["metric label"] < 20 || fig.Errors == 0 {
		t.Errorf("too little scanned to mean anything: %v, %d errors", sc.scanned, fig.Errors)
	}
	fig.Note = fmt.Sprintf("scanned %d span attributes, %d span names/statuses/events, %d metric labels, %d error strings, %d log lines; 0 secrets",
		sc.scanned["span attribute"], sc.scanned["span name"]+sc.scanned["span status"]+sc.scanned["span event"],
		sc.scanned["metric label"], sc.scanned["error string"], sc.scanned["log line"])
}
