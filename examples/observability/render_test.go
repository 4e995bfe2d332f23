package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRendererReadsEveryQuery pins that the renderer can evaluate every
// panel query of dashboard.json: an edit that uses a PromQL shape
// promql.go does not know fails here, not in the README's picture.
func TestRendererReadsEveryQuery(t *testing.T) {
	_, panels, err := readDashboard(dashboardJSON)
	if err != nil {
		t.Fatal(err)
	}
	exprs := dashboardExprs(t, "dashboard.json")
	n := 0
	for _, p := range panels {
		if len(p.queries) != len(p.Targets) || len(p.queries) == 0 {
			t.Errorf("panel %q: %d queries parsed of %d", p.Title, len(p.queries), len(p.Targets))
		}
		n += len(p.queries)
	}
	// dashboardExprs adds the templating query, which no panel draws.
	if n != len(exprs)-1 {
		t.Errorf("parsed %d panel queries; dashboard.json has %d besides its templating", n, len(exprs)-1)
	}
}

func TestUnsupportedQueriesFailClearly(t *testing.T) {
	for _, q := range []string{
		`avg(rate(x_total[5m]))`,
		`sum without (a) (x)`,
		`rate(x_total[5m]) * 2`,
		`x offset 5m`,
		`sum(rate(x_total{a="b\"c"}[5m]))`,
		`label_replace(x, "a", "b", "c", "d")`,
	} {
		_, err := parseQuery(q)
		if err == nil {
			t.Errorf("%s: no error", q)
			continue
		}
		if !strings.Contains(err.Error(), "the renderer reads only") {
			t.Errorf("%s: %v does not say what the renderer reads", q, err)
		}
	}
	if _, _, err := readDashboard([]byte(`{"panels":[{"title":"p","type":"piechart","targets":[{"expr":"x"}]}]}`)); err == nil ||
		!strings.Contains(err.Error(), `"piechart"`) {
		t.Errorf("a panel type the renderer does not draw: %v", err)
	}
}

// points builds scrapes one second apart from per-scrape values of each
// series, given as name{a="x",...}.
func points(t *testing.T, series map[string][]float64) []point {
	t.Helper()
	n := 0
	for _, vs := range series {
		n = max(n, len(vs))
	}
	t0 := time.Unix(1000, 0)
	ps := make([]point, n)
	for i := range ps {
		ps[i] = point{at: t0.Add(time.Duration(i) * time.Second), samples: map[string]sample{}}
	}
	for s, vs := range series {
		name, rest, _ := strings.Cut(s, "{")
		labels := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				labels[k] = strings.Trim(v, `"`)
			}
		}
		for i, v := range vs {
			if !math.IsNaN(v) {
				ps[i].samples[seriesKey(name, labels)] = sample{name: name, labels: labels, value: v}
			}
		}
	}
	return ps
}

func TestQueriesEvaluateAsPrometheus(t *testing.T) {
	nan := math.NaN()
	ps := points(t, map[string][]float64{
		`c_total{a="x",job="j"}`: {0, 10, 30},
		`c_total{a="y",job="j"}`: {nan, 4, 10}, // appears after the first scrape: counted from 0
		`d_total{a="x"}`:         {0, 5, 10},
		`h_bucket{le="0.1"}`:     {0, 5, 10},
		`h_bucket{le="1"}`:       {0, 10, 20},
		`h_bucket{le="+Inf"}`:    {0, 10, 20},
		`g{e="a",s="healthy"}`:   {1, 1, 0},
		`g{e="a",s="ejected"}`:   {0, 0, 1},
	})
	for _, tc := range []struct {
		q    string
		want map[string]float64 // by legend of the labels
	}{
		{`sum(rate(c_total{job=~"$job"}[$__rate_interval]))`, map[string]float64{"": 20}}, // (30+10)/2s
		{`sum by (a) (rate(c_total{a=~"x|z"}[$__rate_interval]))`, map[string]float64{"a=x": 15}},
		{`sum by (a) (increase(c_total{a!="x"}[$__rate_interval]))`, map[string]float64{"a=y": 10}},
		{`sum(rate(c_total{a="x"}[5m])) / sum(rate(d_total[5m]))`, map[string]float64{"": 3}},
		{`histogram_quantile(0.5, sum by (le) (rate(h_bucket[$__rate_interval])))`, map[string]float64{"": 0.1}},
		// Rank 7.5 of 10 falls in (0.1, 1], which holds 5: 0.1 + 0.9·2.5/5.
		{`histogram_quantile(0.75, sum by (le) (rate(h_bucket[$__rate_interval])))`, map[string]float64{"": 0.55}},
		{`max by (e, s) (g) == 1`, map[string]float64{"e=a s=ejected": 1}},
		{`sum(g{s="healthy"})`, map[string]float64{"": 0}},
	} {
		n, err := parseQuery(tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.q, err)
			continue
		}
		v, err := n.eval(ps, 2, 2*time.Second)
		if err != nil {
			t.Errorf("%s: %v", tc.q, err)
			continue
		}
		got := map[string]float64{}
		for _, s := range v {
			var parts []string
			for k, lv := range s.labels {
				parts = append(parts, k+"="+lv)
			}
			slices.Sort(parts)
			got[strings.Join(parts, " ")] = s.value
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s = %v, want %v", tc.q, got, tc.want)
			continue
		}
		for k, w := range tc.want {
			if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
				t.Errorf("%s = %v, want %v", tc.q, got, tc.want)
			}
		}
	}
	// The first scrape has no rate yet, so a sum of rates has no point.
	n, err := parseQuery(`sum(rate(c_total[1m]))`)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := n.eval(ps, 0, 2*time.Second); err != nil || len(v) != 0 {
		t.Errorf("rate at the first scrape = %v, %v; want nothing", v, err)
	}
}
