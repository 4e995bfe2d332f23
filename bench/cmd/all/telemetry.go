package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// The telemetry section of issue 17: BenchmarkTelemetry (bench/telemetry_test.go),
// sturdy's spans and metrics with the OpenTelemetry SDK beside otelhttp's.

const (
	telemetryPattern = "^BenchmarkTelemetry$"
	telemetryHeading = "### Telemetry with the OpenTelemetry SDK"
)

// telemetryRows are BenchmarkTelemetry's rows, each with the row its
// telemetry cost is measured from and what it is.
var telemetryRows = []struct{ name, base, desc string }{
	{"stub", "", "the stub transport alone"},
	{"otelhttp-sdk", "stub", "`otelhttp.NewTransport(stub)`: one CLIENT span, `http.client.request.duration` and `http.client.request.body.size`"},
	{"sturdy-noop", "", "`httpmw.NewTransport(stub)`, one tier of one endpoint, telemetry off (no-op tracer and meter providers)"},
	{"sturdy-sdk", "sturdy-noop", "the same with the SDK providers: spans and metrics"},
	{"sturdy-sdk-metrics", "sturdy-noop", "metrics only (SDK meter provider, no-op tracer provider)"},
	{"sturdy-sdk-traces", "sturdy-noop", "spans only (SDK tracer provider, no-op meter provider)"},
}

// cost is what a row costs above its base row.
type cost struct{ ns, cpu, allocs float64 }

// telemetryCost returns row's cost above base's in pass i (i < 0: of the
// medians; allocations are always the medians', they do not vary).
func (r *report) telemetryCost(row, base string, i int) (cost, bool) {
	a, b := r.Micro["BenchmarkTelemetry/"+row], r.Micro["BenchmarkTelemetry/"+base]
	if a == nil || b == nil {
		return cost{}, false
	}
	c := cost{a.NsOp - b.NsOp, a.CPUOp - b.CPUOp, a.AllocsOp - b.AllocsOp}
	if i < 0 {
		return c, true
	}
	if i >= len(a.Runs) || i >= len(b.Runs) || i >= len(a.CPURuns) || i >= len(b.CPURuns) {
		return cost{}, false
	}
	c.ns, c.cpu = a.Runs[i]-b.Runs[i], a.CPURuns[i]-b.CPURuns[i]
	return c, true
}

// telemetryMarkdown writes the telemetry section, when it was measured.
func (r *report) telemetryMarkdown(w func(string, ...any)) {
	if r.Micro["BenchmarkTelemetry/sturdy-sdk"] == nil {
		return
	}
	w("%s\n\n", telemetryHeading)
	if r.TelemetryOnly {
		w("_Measured by `go run ./bench/cmd/all -only-telemetry` on %s (load average %.2f / %.2f / %.2f at the start), "+
			"which rewrites this section alone; the median of %d interleaved passes, `-benchtime %s`._\n\n",
			r.Start.UTC().Format("2006-01-02 15:04 MST"), r.Load[0].Avg[0], r.Load[0].Avg[1], r.Load[0].Avg[2], r.Count, r.Benchtime)
	}
	w("What sturdy's OpenTelemetry instrumentation costs per call with the SDK installed, beside what otelhttp's costs, " +
		"in `bench/telemetry_test.go`. The request is the HTTP success path above (POST 1 KiB JSON to `/v1/chat/completions`, " +
		"the stub's JSON answer read to EOF). Every SDK row gets providers of its own of the same make: an `sdktrace.TracerProvider` " +
		"that samples every span (`AlwaysSample`) and hands each ended span, synchronously, to an exporter that drops it, and an " +
		"`sdkmetric.MeterProvider` with a `ManualReader` (every measurement aggregated, never collected). The telemetry cost is " +
		"otelhttp's row minus the stub's, and sturdy's rows minus `sturdy-noop` (sturdy's own work, which the rows above measure, " +
		"left out). Beside wall time (ns/op), each row reports the process's CPU time per call (cpu-ns/op, from getrusage, the " +
		"garbage collector's work on other threads included): on this shared machine wall time also counts the time other " +
		"programs held the CPUs, CPU time does not, so its ratio is the steadier one.\n\n")
	w("```sh\ncd bench\nfor i in $(seq %d); do go test -run '^$' -bench '%s' -benchmem -count 1 -benchtime %s .; done\n```\n\n",
		r.Count, telemetryPattern, r.Benchtime)
	w("| row | what | ns/op | cpu-ns/op | B/op | allocs/op | telemetry ns/op | telemetry cpu-ns/op | telemetry allocs/op |\n" +
		"|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range telemetryRows {
		m := r.Micro["BenchmarkTelemetry/"+row.name]
		if m == nil {
			continue
		}
		ns, cpu, al := "–", "–", "–"
		if c, ok := r.telemetryCost(row.name, row.base, -1); ok {
			ns, cpu, al = fmt.Sprintf("%+.0f", c.ns), fmt.Sprintf("%+.0f", c.cpu), fmt.Sprintf("%+.0f", c.allocs)
		}
		w("| `%s` | %s | %.0f | %.0f | %.0f | %.0f | %s | %s | %s |\n", row.name, row.desc, m.NsOp, m.CPUOp, m.BOp, m.AllocsOp, ns, cpu, al)
	}
	w("\n")
	s, ok1 := r.telemetryCost("sturdy-sdk", "sturdy-noop", -1)
	o, ok2 := r.telemetryCost("otelhttp-sdk", "stub", -1)
	if ok1 && ok2 && o.ns > 0 && o.cpu > 0 && o.allocs > 0 {
		var byNs, byCPU []float64
		for i := range r.Micro["BenchmarkTelemetry/stub"].Runs {
			s, ok1 := r.telemetryCost("sturdy-sdk", "sturdy-noop", i)
			o, ok2 := r.telemetryCost("otelhttp-sdk", "stub", i)
			if ok1 && ok2 && o.ns > 0 && o.cpu > 0 {
				byNs, byCPU = append(byNs, s.ns/o.ns), append(byCPU, s.cpu/o.cpu)
			}
		}
		spread := func(v []float64) string {
			if len(v) < 2 {
				return ""
			}
			return fmt.Sprintf(" (per pass %.2f× to %.2f×)", slices.Min(v), slices.Max(v))
		}
		w("sturdy's telemetry cost / otelhttp's: **%.2f× in CPU time**%s, %.2f× in wall time%s, **%.2f× in allocations** (%.0f vs %.0f a call).\n\n",
			s.cpu/o.cpu, spread(byCPU), s.ns/o.ns, spread(byNs), s.allocs/o.allocs, s.allocs, o.allocs)
	}
	w("What the two record is not the same, so the ratio is not like for like. Per call, otelhttp makes one CLIENT span " +
		"(method, URL, server, protocol version, status) and two measurements (request duration and request body size). sturdy makes " +
		"two spans, the INTERNAL `sturdy.call` and a CLIENT `sturdy.attempt` per attempt (the HTTP attributes and sturdy's endpoint, " +
		"tier, attempt number and kind, outcome, won), and eight measurements: `sturdy.calls`, `sturdy.call.duration`, " +
		"`sturdy.call.time_to_first_byte`, `sturdy.attempts`, `sturdy.attempt.duration` (`WithoutAttemptHistograms` drops it), and the " +
		"GenAI conventions' `gen_ai.client.operation.duration` and two `gen_ai.client.token.usage` (input, output), for which it reads " +
		"the request's and the response's `model` and scans the response for its usage. Most of the cost is the SDK's own per span " +
		"and per measurement (the span's allocation, its attribute slice and de-duplication, the snapshot an ended span gives its " +
		"processor, the attribute-set lookup of each measurement); `go test -cpuprofile`/`-memprofile` on `sturdy-sdk` shows it.\n\n")
}

// spliceTelemetry replaces the telemetry section of the markdown file at
// path with the one r measured (the section ends at the next heading of
// its level or above), or inserts it before the balancer's section.
func spliceTelemetry(path string, r *report) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var sec strings.Builder
	r.telemetryMarkdown(func(f string, a ...any) { fmt.Fprintf(&sec, f, a...) })
	if sec.Len() == 0 {
		return fmt.Errorf("BenchmarkTelemetry measured nothing")
	}
	doc := string(old)
	start := strings.Index(doc, telemetryHeading+"\n")
	end := -1
	if start >= 0 {
		end = nextHeading(doc, start+len(telemetryHeading))
	} else if i := strings.Index(doc, "### Balancer Pick + Done\n"); i >= 0 {
		start, end = i, i
	} else {
		return fmt.Errorf("%s has neither a %q nor a balancer section to put the telemetry section before", path, telemetryHeading)
	}
	var b bytes.Buffer
	b.WriteString(doc[:start])
	b.WriteString(sec.String())
	b.WriteString(doc[end:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// nextHeading returns the index of the first "## " or "### " heading in
// doc after from, or len(doc).
func nextHeading(doc string, from int) int {
	for i := from; i < len(doc); {
		j := strings.IndexByte(doc[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		if strings.HasPrefix(doc[i:], "## ") || strings.HasPrefix(doc[i:], "### ") {
			return i
		}
	}
	return len(doc)
}

// runTelemetryOnly measures BenchmarkTelemetry alone and rewrites its
// section of out.
func runTelemetryOnly(dir, out string, count int, benchtime string) error {
	r := &report{Start: time.Now(), Count: count, Benchtime: benchtime, TelemetryOnly: true}
	r.Load = append(r.Load, loadPoint{"start", loadAvg()})
	var err error
	r.Micro, r.MicroOrder, r.MicroCmds, err = runMicro(dir, []microSet{{Pattern: telemetryPattern, Passes: count}}, benchtime)
	if err != nil {
		return err
	}
	return spliceTelemetry(out, r)
}
