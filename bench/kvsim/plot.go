package kvsim

import (
	"image/color"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Plots draws the report's charts into dir and returns their file names:
// TTFT p90 and hit rate per client, grouped by workload.
func (s *Suite) Plots(dir string) ([]string, error) {
	ttft := func(m Summary) float64 { return math.Log10(math.Max(float64(m.P90.Microseconds())/1000, 1)) }
	hit := func(m Summary) float64 { return m.HitRate }
	files := []string{"kvsim-ttft-p90.png", "kvsim-hit-rate.png"}
	if err := s.barChart(filepath.Join(dir, files[0]), "TTFT p90 (mean over seeds)", "TTFT p90 (log scale)", ttft, msTicks{}); err != nil {
		return nil, err
	}
	if err := s.barChart(filepath.Join(dir, files[1]), "Prefix-cache hit rate (cached / prompt tokens)", "hit rate", hit, nil); err != nil {
		return nil, err
	}
	return files, nil
}

func (s *Suite) barChart(file, title, ylabel string, f func(Summary) float64, ticks plot.Ticker) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	if ticks != nil {
		p.Y.Tick.Marker = ticks
	}
	w := vg.Points(9)
	top := 0.0
	n := len(s.Clients)
	var names []string
	for _, sp := range s.Specs {
		names = append(names, sp.Name)
	}
	for i, c := range s.Clients {
		vals := make(plotter.Values, len(s.Specs))
		for j, sp := range s.Specs {
			if m, ok := s.Summary(sp.Name, c); ok {
				vals[j] = f(m)
				top = max(top, vals[j])
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = palette[i%len(palette)]
		bars.Offset = vg.Length(float64(i)-float64(n-1)/2) * w
		p.Add(bars)
		p.Legend.Add(c, bars)
	}
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Max = top * 1.45 // room for the legend above the bars
	return p.Save(12*vg.Inch, 5*vg.Inch, file)
}

// palette tells eight clients apart (plotutil's has seven).
var palette = []color.Color{
	color.RGBA{0xe4, 0x1a, 0x1c, 0xff}, color.RGBA{0x37, 0x7e, 0xb8, 0xff},
	color.RGBA{0x4d, 0xaf, 0x4a, 0xff}, color.RGBA{0xff, 0x7f, 0x00, 0xff},
	color.RGBA{0x98, 0x4e, 0xa3, 0xff}, color.RGBA{0x40, 0x40, 0x40, 0xff},
	color.RGBA{0xf7, 0x81, 0xbf, 0xff}, color.RGBA{0xa6, 0x56, 0x28, 0xff},
}

// msTicks labels an axis of log10(milliseconds).
type msTicks struct{}

func (msTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for v, label := range []string{"1 ms", "10 ms", "100 ms", "1 s", "10 s", "100 s", "1000 s"} {
		if float64(v) >= lo-1e-9 && float64(v) <= hi+1e-9 {
			out = append(out, plot.Tick{Value: float64(v), Label: label})
		}
	}
	return out
}
