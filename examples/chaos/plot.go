package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	plainColor  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff} // red
	sturdyColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	eventColor  = color.Gray{Y: 0xa0}
)

// writePicture writes one PNG with two panels: the latency CDF of both
// clients on a log axis, and their success rate second by second.
func writePicture(path string, title string, plain, sturdy summary, events []event) error {
	cdf, err := cdfPlot(title, plain, sturdy)
	if err != nil {
		return err
	}
	rate, err := ratePlot(plain, sturdy, events)
	if err != nil {
		return err
	}
	img := vgimg.New(30*vg.Centimeter, 12*vg.Centimeter)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	plots := [][]*plot.Plot{{cdf, rate}}
	canvases := plot.Align(plots, tiles, dc)
	cdf.Draw(canvases[0][0])
	rate.Draw(canvases[0][1])

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cdfPlot draws, for each client, the share of all its calls that had
// succeeded within x: the curve ends at the client's success rate.
func cdfPlot(title string, clients ...summary) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "latency CDF (" + title + ")"
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "share of calls succeeded within x"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = 2 * vg.Centimeter
	p.Add(plotter.NewGrid())
	for _, s := range clients {
		if len(s.OKLatency) == 0 {
			continue
		}
		pts := cdfPoints(s, 1500)
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = clientColor(s.Name)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (%.1f%% ok)", s.Name, 100*s.SuccessRate()), l)
	}
	return p, nil
}

// cdfPoints samples at most n points of the step CDF.
func cdfPoints(s summary, n int) plotter.XYs {
	lat := s.OKLatency
	step := max(1, len(lat)/n)
	var pts plotter.XYs
	for i := 0; i < len(lat); i += step {
		pts = append(pts, plotter.XY{X: msf(lat[i]), Y: float64(i+1) / float64(s.Calls)})
	}
	last := len(lat) - 1
	pts = append(pts, plotter.XY{X: msf(lat[last]), Y: float64(last+1) / float64(s.Calls)})
	return pts
}

func msf(d time.Duration) float64 { return math.Max(0.1, float64(d)/float64(time.Millisecond)) }

// ratePlot draws the success rate of the calls started in each second,
// with the scenario's events as vertical lines.
func ratePlot(plain, sturdy summary, events []event) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "success rate per second"
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "successful calls (%)"
	p.X.Min, p.X.Max = 0, float64(len(plain.PerSecond))
	p.Legend.Top, p.Legend.Left = false, true
	p.Add(plotter.NewGrid())
	lo := 100.0
	for _, s := range []summary{plain, sturdy} {
		var pts plotter.XYs
		for i, v := range s.PerSecond {
			if !math.IsNaN(v) {
				pts = append(pts, plotter.XY{X: float64(i) + 0.5, Y: 100 * v})
				lo = math.Min(lo, 100*v)
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		l.Color, sc.Color = clientColor(s.Name), clientColor(s.Name)
		l.Width = vg.Points(1.5)
		sc.Radius = vg.Points(2)
		p.Add(l, sc)
		p.Legend.Add(s.Name, l, sc)
	}
	p.Y.Min, p.Y.Max = math.Max(0, math.Floor(lo/10)*10-5), 101
	seen := map[time.Duration]bool{}
	for _, ev := range events {
		if seen[ev.At] {
			continue
		}
		seen[ev.At] = true
		x := ev.At.Seconds()
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
		if err != nil {
			return nil, err
		}
		l.Color = eventColor
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
	}
	return p, nil
}

func clientColor(name string) color.Color {
	if name == "plain" {
		return plainColor
	}
	return sturdyColor
}

// logTicks labels 1, 2 and 5 times each power of ten, with unlabelled minor
// ticks between: plot.LogTicks labels only the powers of ten, too few for a
// range of one or two decades.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		pow := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * pow
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
