// Command sim runs sturdy's load simulations (BENCHMARKS.md) and prints
// each scenario's table as Markdown.
//
//	go run ./bench/cmd/sim             # the published configuration
//	go run ./bench/cmd/sim -short      # a quick smoke run
//	go run ./bench/cmd/sim -only 2,4   # some scenarios
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/sturdyai/sturdy/bench/sim"
)

func main() {
	var (
		reps  = flag.Int("reps", 3, "repetitions of every run")
		scale = flag.Float64("scale", 1, "multiplies every run's duration")
		short = flag.Bool("short", false, "smoke mode: one condition, fewer clients, one repetition")
		only  = flag.String("only", "", "comma-separated scenario numbers (default all)")
		plots = flag.String("plots", "", "directory for the PNG plots (default none)")
		seed  = flag.Uint64("seed", 1, "base seed")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := sim.Options{Reps: *reps, Scale: *scale, Short: *short, Seed: *seed, PlotDir: *plots,
		Log: func(f string, a ...any) { log.Printf(f, a...) }}
	if *short {
		o.Reps = 1
	}
	want := map[int]bool{}
	for _, s := range strings.Split(*only, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			want[n] = true
		}
	}
	for _, sc := range sim.Scenarios {
		if len(want) > 0 && !want[sc.ID] {
			continue
		}
		res, err := sc.Run(ctx, o)
		if res != nil {
			fmt.Println(res.Markdown())
		}
		if err != nil {
			log.Fatalf("scenario %d: %v", sc.ID, err)
		}
	}
}
