package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The dashboard renderer (-render): it scrapes the program's own /metrics
// while the traffic runs, evaluates every panel query of dashboard.json
// over the scrapes (promql.go) and draws the panels where the dashboard
// puts them, as a PNG: the picture in the README, from a real run, with
// no Grafana or Prometheus at hand.

//go:embed dashboard.json
var dashboardJSON []byte

// panel is what the renderer reads of a dashboard panel.
type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr   string `json:"expr"`
		Legend string `json:"legendFormat"`
	} `json:"targets"`
}

// dashboardPanel is a panel with its parsed queries.
type dashboardPanel struct {
	panel
	queries []node
}

// readDashboard parses dashboard.json and every panel query in it; it
// fails on the first query the renderer cannot evaluate.
func readDashboard(data []byte) (string, []dashboardPanel, error) {
	var d struct {
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return "", nil, fmt.Errorf("dashboard.json: %w", err)
	}
	var out []dashboardPanel
	for _, p := range d.Panels {
		switch p.Type {
		case "stat", "timeseries", "state-timeline":
		default:
			return "", nil, fmt.Errorf("dashboard.json: panel %q: type %q is not one the renderer draws", p.Title, p.Type)
		}
		dp := dashboardPanel{panel: p}
		for _, t := range p.Targets {
			n, err := parseQuery(t.Expr)
			if err != nil {
				return "", nil, fmt.Errorf("dashboard.json: panel %q: %w", p.Title, err)
			}
			dp.queries = append(dp.queries, n)
		}
		out = append(out, dp)
	}
	return d.Title, out, nil
}

// scraper scrapes a /metrics URL every interval until stopped.
type scraper struct {
	url      string
	client   *http.Client
	interval time.Duration
	mu       sync.Mutex
	scrapes  []point
	err      error
	stop     context.CancelFunc
	done     chan struct{}
}

// maxScrapes bounds a render's scrapes (a 10-minute run at 1 s).
const maxScrapes = 600

func startScraper(url string, interval time.Duration) *scraper {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scraper{url: url, client: &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second},
		interval: interval, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.scrapeOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *scraper) scrapeOnce(ctx context.Context) {
	sc, err := scrapeMetrics(ctx, s.client, s.url)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil:
		s.err = err
	case err == nil && len(s.scrapes) < maxScrapes:
		s.scrapes = append(s.scrapes, sc)
	}
}

// rateWindowScrapes is the rate window in scrape intervals: Grafana's
// $__rate_interval is at least four.
const rateWindowScrapes = 4

// close stops the scrapes; it may be called more than once.
func (s *scraper) close() {
	s.stop()
	<-s.done
	s.client.CloseIdleConnections()
}

// finish stops the scrapes and returns them. It takes no last one: the
// traffic is over, and rates over a window that ends after it would
// show its end rather than the run.
func (s *scraper) finish() ([]point, error) {
	s.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scrapes, s.err
}

// scrapeMetrics reads one /metrics page: counters and gauges by their
// names, histograms as Prometheus exposes them (_bucket with le, _sum,
// _count).
func scrapeMetrics(ctx context.Context, client *http.Client, url string) (point, error) {
	sc := point{at: time.Now(), samples: map[string]sample{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return sc, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return sc, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sc, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return sc, fmt.Errorf("parsing %s: %w", url, err)
	}
	add := func(name string, labels map[string]string, v float64) {
		sc.samples[seriesKey(name, labels)] = sample{name: name, labels: labels, value: v}
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, labels, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, labels, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, labels, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", withLabel(labels, "le", formatLE(b.GetUpperBound())), float64(b.GetCumulativeCount()))
				}
				add(name+"_bucket", withLabel(labels, "le", "+Inf"), float64(h.GetSampleCount()))
				add(name+"_sum", labels, h.GetSampleSum())
				add(name+"_count", labels, float64(h.GetSampleCount()))
			}
		}
	}
	return sc, nil
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for lk, lv := range labels {
		out[lk] = lv
	}
	out[k] = v
	return out
}

func formatLE(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return fmt.Sprint(v)
}

// timeline is one plotted series: a value per scrape, NaN where the
// query gave none.
type timeline struct {
	name   string
	labels map[string]string
	values []float64
}

// evalPanel evaluates a panel's queries at every scrape.
func evalPanel(p dashboardPanel, ss []point, window time.Duration) ([]timeline, error) {
	var out []timeline
	for qi, q := range p.queries {
		byName := map[string]*timeline{}
		var order []string
		for i := range ss {
			v, err := q.eval(ss, i, window)
			if err != nil {
				return nil, fmt.Errorf("panel %q, query %d: %w", p.Title, qi+1, err)
			}
			for _, s := range v {
				name := legend(p.Targets[qi].Legend, s.labels)
				tl := byName[name]
				if tl == nil {
					tl = &timeline{name: name, labels: s.labels, values: make([]float64, len(ss))}
					for j := range tl.values {
						tl.values[j] = math.NaN()
					}
					byName[name] = tl
					order = append(order, name)
				}
				tl.values[i] = s.value
			}
		}
		slices.Sort(order)
		for _, n := range order {
			out = append(out, *byName[n])
		}
	}
	return out, nil
}

// legend fills a Grafana legend format's {{label}}s.
func legend(format string, labels map[string]string) string {
	out := format
	for k, v := range labels {
		out = strings.ReplaceAll(out, "{{"+k+"}}", v)
	}
	if out == "" {
		out = seriesKey("", labels)
	}
	return out
}

// Rendering: the dashboard's 24-column grid, a grid unit of gridUnit.
const (
	imageWidth = 1500 * vg.Length(72) / 96 // points for 1500 px at 96 dpi
	gridUnit   = 28 * vg.Length(72) / 96
	imageDPI   = 96
)

var palette = []color.Color{
	rgb(0x7e, 0xb2, 0x6d), rgb(0xea, 0xb8, 0x39), rgb(0x6e, 0xd0, 0xe0), rgb(0xef, 0x84, 0x3c),
	rgb(0xe2, 0x4d, 0x42), rgb(0x1f, 0x78, 0xc1), rgb(0xba, 0x43, 0xa9), rgb(0x70, 0x5d, 0xa0),
	rgb(0x50, 0x86, 0x42), rgb(0xcc, 0xa3, 0x00), rgb(0x44, 0x7e, 0xbc), rgb(0xc1, 0x5c, 0x17),
}

var stateColors = map[string]color.Color{
	"healthy": rgb(0x56, 0xa6, 0x4b), "ejected": rgb(0xe0, 0x2f, 0x44), "probation": rgb(0xff, 0x98, 0x30),
}

func rgb(r, g, b uint8) color.Color { return color.RGBA{R: r, G: g, B: b, A: 255} }

// renderDashboard draws every panel over the scrapes into a PNG at path.
func renderDashboard(path, title string, panels []dashboardPanel, ss []point, window time.Duration) error {
	if len(ss) < 2 {
		return fmt.Errorf("render: %d scrapes; the run was too short to draw anything", len(ss))
	}
	rows := 0
	for _, p := range panels {
		rows = max(rows, p.GridPos.Y+p.GridPos.H)
	}
	header := 2 * gridUnit
	height := header + vg.Length(rows)*gridUnit
	img := vgimg.NewWith(vgimg.UseWH(imageWidth, height), vgimg.UseDPI(imageDPI))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	ts := plot.DefaultTextHandler
	hsty := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 14), Handler: ts}
	dc.FillText(hsty, vg.Point{X: gridUnit / 2, Y: height - header*0.65},
		fmt.Sprintf("%s — rendered from %d scrapes of a %.0f s run of examples/observability (rate window %v)",
			title, len(ss), ss[len(ss)-1].at.Sub(ss[0].at).Seconds(), window))

	col := imageWidth / 24
	for _, p := range panels {
		tls, err := evalPanel(p, ss, window)
		if err != nil {
			return err
		}
		g := p.GridPos
		top := height - header - vg.Length(g.Y)*gridUnit
		c := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: vg.Length(g.X) * col, Y: top - vg.Length(g.H)*gridUnit},
			Max: vg.Point{X: vg.Length(g.X+g.W) * col, Y: top},
		}}
		c = draw.Crop(c, 3, -3, 3, -3)
		if err := drawPanel(c, p, tls, ss); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// drawPanel draws one panel: a plot on the left, its legend on the right.
func drawPanel(c draw.Canvas, p dashboardPanel, tls []timeline, ss []point) error {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font.Size = 11
	pl.X.Label.Text = "s since start"
	pl.X.Label.TextStyle.Font.Size = 8
	for _, a := range []*plot.Axis{&pl.X, &pl.Y} {
		a.Tick.Label.Font.Size = 7
	}
	scale, unit := unitOf(p.FieldConfig.Defaults.Unit)
	pl.Y.Label.Text = unit
	pl.Y.Label.TextStyle.Font.Size = 8
	pl.X.Min, pl.X.Max = 0, ss[len(ss)-1].at.Sub(ss[0].at).Seconds()
	lg := plot.NewLegend()
	lg.TextStyle.Font.Size = 7
	lg.Top, lg.Left = true, true
	lg.ThumbnailWidth = 10

	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = s.at.Sub(ss[0].at).Seconds()
	}
	if p.Type == "state-timeline" {
		if err := drawStates(pl, &lg, tls, xs); err != nil {
			return err
		}
	} else {
		pl.Y.Min = 0
		for i, tl := range tls {
			clr := palette[i%len(palette)]
			var thumb plot.Thumbnailer
			for _, seg := range segments(xs, tl.values, scale) {
				l, err := plotter.NewLine(seg)
				if err != nil {
					return err
				}
				l.Color, l.Width = clr, vg.Points(1.2)
				if len(seg) == 1 {
					sc, err := plotter.NewScatter(seg)
					if err != nil {
						return err
					}
					sc.Color, sc.Radius = clr, vg.Points(1.2)
					pl.Add(sc)
				}
				pl.Add(l)
				thumb = l
			}
			if thumb != nil {
				lg.Add(tl.name, thumb)
			}
		}
		// Head room, so that a line at the top stays clear of the title.
		pl.Y.Max *= 1.1
		if p.Type == "stat" {
			pl.Title.Text = p.Title + ": " + lastValue(tls, scale, unit)
		}
		if len(tls) == 0 {
			pl.Title.Text += " (no data)"
		}
	}
	legendW := vg.Length(0)
	if len(tls) > 0 && p.Type != "stat" {
		legendW = min(c.Size().X*0.32, 150)
	}
	pl.Draw(draw.Crop(c, 0, -legendW, 0, 0))
	if legendW > 0 {
		lc := draw.Crop(c, c.Size().X-legendW+4, 0, 0, -18)
		lg.Draw(lc)
	}
	return nil
}

// drawStates draws a state timeline: a row per endpoint, a bar colored by
// its state where the query has it.
func drawStates(pl *plot.Plot, lg *plot.Legend, tls []timeline, xs []float64) error {
	var names []string
	for _, tl := range tls {
		if ep := tl.labels["sturdy_endpoint"]; !slices.Contains(names, ep) {
			names = append(names, ep)
		}
	}
	slices.Sort(names)
	pl.NominalY(names...)
	pl.Y.Label.Text = ""
	seen := map[string]bool{}
	for _, tl := range tls {
		st := tl.labels["sturdy_health_state"]
		clr, ok := stateColors[st]
		if !ok {
			return fmt.Errorf("state timeline: unknown state %q", st)
		}
		y := float64(slices.Index(names, tl.labels["sturdy_endpoint"]))
		vals := make([]float64, len(tl.values))
		for i, v := range tl.values {
			vals[i] = math.NaN()
			if !math.IsNaN(v) {
				vals[i] = y
			}
		}
		for _, seg := range segments(xs, vals, 1) {
			if len(seg) == 1 {
				seg = append(seg, seg[0])
			}
			l, err := plotter.NewLine(seg)
			if err != nil {
				return err
			}
			l.Color, l.Width = clr, vg.Points(9)
			pl.Add(l)
			if !seen[st] {
				seen[st] = true
				lg.Add(st, l)
			}
		}
	}
	pl.Y.Min, pl.Y.Max = -0.6, float64(len(names))-0.4
	return nil
}

// segments splits a series into its runs without NaN.
func segments(xs, ys []float64, scale float64) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for i, y := range ys {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: xs[i], Y: y * scale})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// unitOf returns the factor and the axis label of a Grafana unit.
func unitOf(u string) (float64, string) {
	switch u {
	case "percentunit":
		return 100, "%"
	case "reqps":
		return 1, "per second"
	case "s":
		return 1, "seconds"
	case "short":
		return 1, "per second"
	}
	return 1, ""
}

// lastValue is a stat panel's figure: its first series' last value.
func lastValue(tls []timeline, scale float64, unit string) string {
	if len(tls) == 0 {
		return "no data"
	}
	vs := tls[0].values
	for i := len(vs) - 1; i >= 0; i-- {
		if !math.IsNaN(vs[i]) {
			v := vs[i] * scale
			switch {
			case unit == "%":
				return fmt.Sprintf("%.1f%% at the end", v)
			case v == math.Trunc(v):
				return fmt.Sprintf("%.0f at the end", v)
			}
			return fmt.Sprintf("%.2f at the end", v)
		}
	}
	return "no data"
}
