package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func telemetryReport() *report {
	r := &report{Start: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC), Count: 2, Benchtime: "300ms", TelemetryOnly: true,
		Load: []loadPoint{{"start", [3]float64{1, 2, 3}}}, Micro: map[string]*bench{}}
	for name, ns := range map[string][]float64{
		"stub": {1000, 1200}, "otelhttp-sdk": {3000, 3200}, "sturdy-noop": {2000, 2400}, "sturdy-sdk": {5000, 5600},
	} {
		cpu := []float64{ns[0] * 2, ns[1] * 2} // twice the wall time: a GC thread beside
		r.Micro["BenchmarkTelemetry/"+name] = &bench{NsOp: (ns[0] + ns[1]) / 2, AllocsOp: 10, Runs: ns,
			CPUOp: (cpu[0] + cpu[1]) / 2, CPURuns: cpu}
		r.MicroOrder = append(r.MicroOrder, "BenchmarkTelemetry/"+name)
	}
	r.Micro["BenchmarkTelemetry/otelhttp-sdk"].AllocsOp = 30
	r.Micro["BenchmarkTelemetry/sturdy-sdk"].AllocsOp = 25
	return r
}

// The ratio is sturdy's telemetry cost (sturdy-sdk − sturdy-noop) over
// otelhttp's (otelhttp-sdk − stub), of the medians and per pass.
func TestTelemetrySectionReportsTheRatio(t *testing.T) {
	var b strings.Builder
	telemetryReport().telemetryMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
	got := b.String()
	for _, want := range []string{
		"| `sturdy-sdk` |", "| +3100 | +6200 | +15 |", // 5300 − 2200 ns, twice in CPU, 25 − 10 allocs
		"**1.55× in CPU time** (per pass 1.50× to 1.60×)", // 6200 / 4000; 6000/4000, 6400/4000
		"1.55× in wall time (per pass 1.50× to 1.60×)",
		"**0.75× in allocations** (15 vs 20 a call)",
		"-only-telemetry",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the section has no %q:\n%s", want, got)
		}
	}
}

func TestSpliceTelemetryReplacesOnlyItsSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	before := "# x\n\n## Overhead microbenchmarks\n\n### gRPC unary\n\ngrpc\n\n"
	after := "### Balancer Pick + Done\n\nbalancer\n\n## Notes\n"
	if err := os.WriteFile(path, []byte(before+after), 0o644); err != nil {
		t.Fatal(err)
	}
	r := telemetryReport()
	for range 2 { // inserted, then replaced
		if err := spliceTelemetry(path, r); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(got)
		if !strings.HasPrefix(s, before+telemetryHeading+"\n") || !strings.HasSuffix(s, "\n"+after) || strings.Count(s, telemetryHeading) != 1 {
			t.Fatalf("after splicing:\n%s", s)
		}
	}
}
