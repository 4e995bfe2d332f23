// Command all runs sturdy's whole benchmark suite — the overhead
// microbenchmarks (go test -bench in the bench module), the load
// simulations (package sim) and the cache-aware routing simulation
// (package kvsim, about a minute) — and writes BENCHMARKS.md and the
// plots under bench/plots from what it measured. From the repository root:
//
//	go run ./bench/cmd/all
//
// It takes about nine minutes on two cores. Flags shorten it for a look
// (-reps 1 -scale 0.5 -count 1), but the published file comes from the
// defaults.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sturdyai/sturdy/bench/sim"
)

func main() {
	var (
		reps      = flag.Int("reps", 3, "repetitions of every simulation run")
		scale     = flag.Float64("scale", 1, "multiplies every simulation run's duration")
		count     = flag.Int("count", 6, "passes over the adapter microbenchmarks (the median is reported); the balancer and policy ones get half as many")
		benchtime = flag.String("benchtime", "300ms", "go test -benchtime for the microbenchmarks")
		out       = flag.String("out", "", "output file (default BENCHMARKS.md beside the bench module)")
		waitLoad  = flag.Float64("wait-load", 0, "before starting, wait (up to 10 minutes) for the 1-minute load average to fall below this; 0 means don't wait")
		skipMicro = flag.Bool("skip-micro", false, "skip the microbenchmarks")
		skipSim   = flag.Bool("skip-sim", false, "skip the simulations")
		skipKV    = flag.Bool("skip-kvsim", false, "skip the cache-aware routing simulation")
		kvSeeds   = flag.Int("kvsim-seeds", 5, "seeds of the cache-aware routing simulation")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	dir, err := benchDir()
	if err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		*out = filepath.Join(filepath.Dir(dir), "BENCHMARKS.md")
	}
	plots := filepath.Join(dir, "plots")
	if err := os.MkdirAll(plots, 0o755); err != nil {
		log.Fatal(err)
	}
	if *waitLoad > 0 {
		deadline := time.Now().Add(10 * time.Minute)
		for loadAvg()[0] >= *waitLoad && time.Now().Before(deadline) && ctx.Err() == nil {
			log.Printf("load average %.2f ≥ %.2f, waiting", loadAvg()[0], *waitLoad)
			time.Sleep(15 * time.Second)
		}
	}

	r := &report{Start: time.Now(), Reps: *reps, Scale: *scale, Count: *count, Benchtime: *benchtime}
	r.Load = append(r.Load, loadPoint{"start", loadAvg()})
	if !*skipMicro {
		log.Printf("microbenchmarks: %d passes, benchtime %s", *count, *benchtime)
		r.Micro, r.MicroOrder, r.MicroCmds, err = runMicro(dir, []microSet{
			{Pattern: "^(BenchmarkHTTP|BenchmarkGRPC)$", Passes: *count},
			{Pattern: "^(BenchmarkBalancer|BenchmarkPolicy)$", Passes: max(1, (*count+1)/2)},
		}, *benchtime)
		if err != nil {
			log.Fatal(err)
		}
		r.Load = append(r.Load, loadPoint{"after the microbenchmarks", loadAvg()})
	}
	if !*skipSim {
		o := sim.Options{Reps: *reps, Scale: *scale, Seed: 1, PlotDir: plots, Log: func(f string, a ...any) { log.Printf(f, a...) }}
		for _, sc := range sim.Scenarios {
			res, err := sc.Run(ctx, o)
			if err != nil {
				log.Fatalf("scenario %d: %v", sc.ID, err)
			}
			r.Sims = append(r.Sims, res)
			r.Load = append(r.Load, loadPoint{fmt.Sprintf("after scenario %d", sc.ID), loadAvg()})
		}
	}
	if !*skipKV && ctx.Err() == nil {
		if r.KV, err = runKVSim(*kvSeeds, *scale, log.Printf); err != nil {
			log.Fatal(err)
		}
		r.Load = append(r.Load, loadPoint{"after the cache-aware routing simulation", loadAvg()})
	}
	r.Elapsed = time.Since(r.Start)
	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s in %s", *out, r.Elapsed.Round(time.Second))
	for _, c := range r.checks() {
		log.Printf("%-12s %s: %s", c.Mark(), c.Target, c.Got)
	}
}

// benchDir returns the bench module's directory.
func benchDir() (string, error) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/sturdyai/sturdy/bench").Output()
	if err != nil {
		return "", fmt.Errorf("locating the bench module (run from the repository root): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

type loadPoint struct {
	When string
	Avg  [3]float64
}

func loadAvg() [3]float64 {
	var a [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err == nil {
		_, _ = fmt.Sscanf(string(b), "%f %f %f", &a[0], &a[1], &a[2])
	}
	return a
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "?"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			_, _ = fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
		}
	}
	return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
}
