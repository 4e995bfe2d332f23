package sim

import (
	"fmt"
	"image/color"
	"math"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// ninesTicks labels an axis of −log10(1−q) with percentiles.
type ninesTicks struct{}

func (ninesTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range []struct {
		v     float64
		label string
	}{{0.301, "50"}, {1, "90"}, {2, "99"}, {3, "99.9"}, {4, "99.99"}} {
		if t.v >= lo-1e-9 && t.v <= hi+1e-9 {
			out = append(out, plot.Tick{Value: t.v, Label: t.label})
		}
	}
	return out
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

func addLine(p *plot.Plot, i int, name string, pts plotter.XYs) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i / 7)
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func save(p *plot.Plot, file string) error {
	return p.Save(9*vg.Inch, 5.5*vg.Inch, file)
}

// QuantilePlot draws the latency distribution of each row, latency (log)
// against percentile from p50 to p99.99.
func QuantilePlot(file, title string, rows []*Row) error {
	p := newPlot(title, "percentile", "latency (ms, log scale)")
	p.X.Tick.Marker = ninesTicks{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, r := range rows {
		var pts plotter.XYs
		for x := 0.301; x <= 4.0001; x += 0.05 {
			q := 100 * (1 - math.Pow(10, -x))
			pts = append(pts, plotter.XY{X: x, Y: math.Max(0.1, float64(r.P(q))/float64(time.Millisecond))})
		}
		if err := addLine(p, i, r.Client, pts); err != nil {
			return err
		}
	}
	return save(p, file)
}

// TimeSeriesPlot draws one line per key over time; hline, if > 0, is a
// dashed reference line (a capacity).
func TimeSeriesPlot(file, title, ylabel string, lines map[string][]float64, bucketSec, hline float64) error {
	p := newPlot(title, "time (s)", ylabel)
	for i, name := range sortedKeys(lines) {
		var pts plotter.XYs
		for j, v := range lines[name] {
			pts = append(pts, plotter.XY{X: float64(j) * bucketSec, Y: v})
		}
		if err := addLine(p, i, name, pts); err != nil {
			return err
		}
	}
	if hline > 0 {
		var n int
		for _, v := range lines {
			n = max(n, len(v))
		}
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: hline}, {X: float64(n) * bucketSec, Y: hline}})
		if err != nil {
			return err
		}
		l.Color = color.Gray{Y: 80}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("capacity %.0f/s", hline), l)
	}
	return save(p, file)
}

// UtilPlot draws each client's p99.9 against the utilization of specs.
func UtilPlot(file, title string, specs []runSpec, rows []*Row) error {
	p := newPlot(title, "utilization (%)", "p99.9 latency (ms, log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	byClient := map[string]plotter.XYs{}
	var order []string
	for _, rs := range specs {
		var u float64
		_, _ = fmt.Sscanf(strings.TrimSuffix(rs.Condition, "%"), "%g", &u)
		for _, r := range rows {
			if r.Condition != rs.Condition {
				continue
			}
			if _, ok := byClient[r.Client]; !ok {
				order = append(order, r.Client)
			}
			byClient[r.Client] = append(byClient[r.Client], plotter.XY{X: u, Y: math.Max(0.1, float64(r.P(99.9))/float64(time.Millisecond))})
		}
	}
	for i, name := range order {
		if err := addLine(p, i, name, byClient[name]); err != nil {
			return err
		}
	}
	return save(p, file)
}
