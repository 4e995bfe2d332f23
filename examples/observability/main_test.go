package main

import (
	"github.com/sturdyai/sturdy/examples/internal/clitest"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	pngpkg "image/png"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watchWriter is a buffer that closes seen when its content first contains
// want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.seen != nil && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
		w.seen = nil
	}
	return n, err
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDashboardAndAlertsMatchMetrics runs the program briefly, scrapes its
// /metrics once the traffic is over, and checks that every metric
// dashboard.json and alerts.yml query is one the program exposes, under
// the name the Prometheus exporter gave it, and that the dashboard shows
// every sturdy metric.
func TestDashboardAndAlertsMatchMetrics(t *testing.T) {
	out := &watchWriter{want: loadDone, seen: make(chan struct{})}
	seen := out.seen
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	png := filepath.Join(t.TempDir(), "dashboard.png")
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-duration", "2s", "-linger", "1m",
			"-probe", "100ms", "-workers", "3", "-calls", "3000", "-traces", "1",
			"-render", png, "-render-every", "200ms"}, out)
	}()
	select {
	case <-seen:
	case err := <-done:
		t.Fatalf("run returned before the traffic was over: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q after 30s:\n%s", loadDone, out)
	}
	url := regexp.MustCompile(`metrics: (http://127\.0\.0\.1:\d+/metrics)`).FindStringSubmatch(out.String())
	if url == nil {
		t.Fatalf("no metrics URL in the output:\n%s", out)
	}
	scraped := scrape(t, url[1])
	cancel() // ends the linger
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	logOutput(t, out.String())

	// The faults of each phase must have left their mark.
	for _, name := range []string{"sturdy_calls_total", "sturdy_attempts_total", "sturdy_hedges_total",
		"sturdy_fallbacks_total", "sturdy_ejections_total", "sturdy_endpoint_state",
		"sturdy_call_duration_seconds_bucket", "sturdy_call_time_to_first_byte_seconds_bucket",
		"sturdy_budget_refusals_total"} {
		if scraped[name] == 0 {
			t.Errorf("/metrics has no sample of %s", name)
		}
	}

	dash := dashboardExprs(t, "dashboard.json")
	alerts := alertExprs(t, "alerts.yml")
	if len(dash) == 0 || len(alerts) == 0 {
		t.Fatalf("found %d dashboard queries and %d alert expressions", len(dash), len(alerts))
	}
	referenced := map[string]bool{}
	for what, exprs := range map[string][]string{"dashboard.json": dash, "alerts.yml": alerts} {
		for _, expr := range exprs {
			names := metricNames(expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", what, expr)
			}
			for _, n := range names {
				referenced[n] = true
				if scraped[n] == 0 {
					t.Errorf("%s queries %s, which /metrics does not have (in %q)", what, n, expr)
				}
			}
		}
	}
	// And the other way: the dashboard shows every sturdy family.
	for n := range scraped {
		if !strings.HasPrefix(n, "sturdy_") {
			continue
		}
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !slices.ContainsFunc(dash, func(e string) bool { return strings.Contains(e, family) }) {
			t.Errorf("dashboard.json shows nothing of %s", family)
		}
	}

	// The renderer drew the dashboard from the run's scrapes.
	if !strings.Contains(out.String(), "rendered "+png) {
		t.Errorf("no %q in the output", "rendered "+png)
	}
	if f, err := os.Open(png); err != nil {
		t.Error(err)
	} else {
		cfg, err := pngpkg.DecodeConfig(f)
		_ = f.Close()
		if err != nil || cfg.Width != 1500 || cfg.Height < 1000 {
			t.Errorf("%s: %+v, %v; want a PNG 1500 pixels wide", png, cfg, err)
		}
	}

	// A trace: the application's span, sturdy's call span, its attempts.
	for _, want := range []string{`{"Name":"ask"`, `{"Name":"sturdy.call"`, `{"Name":"sturdy.attempt"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no span %s in the output", want)
		}
	}
}

// logOutput logs the output without the span JSON.
func logOutput(t *testing.T, s string) {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(line, "{") {
			b.WriteString(line)
		}
	}
	t.Logf("output (spans left out):\n%s", b.String())
}

// scrape returns the number of samples of each name on a /metrics page.
func scrape(t *testing.T, url string) map[string]int {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	names := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			name := line[:i]
			names[name]++
			// A label must not repeat its metric's name
			// (sturdy_endpoint_state{sturdy_endpoint_state=...} did).
			family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if strings.HasPrefix(name, "sturdy_") && line[i] == '{' && strings.Contains(line[i:], family+"=") {
				t.Errorf("a label of %s has the metric's name: %s", family, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// dashboardExprs returns the PromQL of every panel target and templating
// query of a Grafana dashboard.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: a panel without a query", path)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: templating query: %v", path, err)
		}
		exprs = append(exprs, q.Query)
	}
	return exprs
}

// alertExprs returns the expr of every rule of a Prometheus rules file.
func alertExprs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs, alerts []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			alerts = append(alerts, r.Alert)
		}
	}
	sort.Strings(alerts)
	want := []string{"SturdyEndpointEjected", "SturdyFallbackShareHigh", "SturdyRetryBudgetExhausted", "SturdySuccessRateLow"}
	if !slices.Equal(alerts, want) {
		t.Errorf("%s has alerts %v, want %v", path, alerts, want)
	}
	return exprs
}

var (
	promStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// Grafana's label_values(metric, label): keep the metric only.
	grafanaLabelValues = regexp.MustCompile(`label_values\(\s*([^,()]+?)\s*,[^)]*\)`)
	promIdent          = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords       = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true, "bool": true, "and": true, "or": true, "unless": true,
		"offset": true, "inf": true, "nan": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression selects: its
// identifiers, less strings, label matchers, ranges, grouping label lists,
// function names (followed by "("), keywords and number suffixes.
func metricNames(expr string) []string {
	e := grafanaLabelValues.ReplaceAllString(expr, "$1")
	e = promStrings.ReplaceAllString(e, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.$", rune(e[loc[0]-1])) {
			continue // 5m, 1e3, a Grafana $variable
		}
		if rest := strings.TrimLeft(e[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if promKeywords[strings.ToLower(id)] {
			continue
		}
		if !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (sturdy_tier) (rate(sturdy_calls_total{job=~"$job",x="a}b"}[$__rate_interval]))`, []string{"sturdy_calls_total"}},
		{"histogram_quantile(0.95, sum by (le, sturdy_endpoint) (rate(sturdy_attempt_duration_seconds_bucket[5m])))", []string{"sturdy_attempt_duration_seconds_bucket"}},
		{"a_total / ignoring (x) group_left (y) b offset 5m > bool 1e3", []string{"a_total", "b"}},
		{"label_values(sturdy_calls_total, job)", []string{"sturdy_calls_total"}},
		{"max without(sturdy_health_state)(sturdy_endpoint_state) == 1 and on(job) up", []string{"sturdy_endpoint_state", "up"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestRunFlags(t *testing.T) {
	clitest.Run(t, run, []clitest.Case{
		{Args: []string{"-h"}, WantOut: "Usage: observability"},
		{Args: []string{"-nope"}, Usage: true},
		{Args: []string{"-listen", "0.0.0.0:9464"}, Usage: true},
		{Args: []string{"-listen", "nonsense"}, Usage: true},
		{Args: []string{"-duration", "0s"}, Usage: true},
		{Args: []string{"extra"}, Usage: true},
		{Args: []string{"-render", "dashboard.jpg"}, Usage: true},
		{Args: []string{"-render", "d.png", "-render-every", "10ms"}, Usage: true},
	})
}
