// Command kvsim runs the cache-aware routing simulation (package
// bench/kvsim) and writes its report, KVSIM.md, and PNG plots into a
// directory.
//
//	go run ./bench/cmd/kvsim -out bench/kvsim/report   # the published report
//	go run ./bench/cmd/kvsim -out /tmp/kvsim -seeds 1 -scale 0.25   # a quick look
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/sturdyai/sturdy/bench/kvsim"
)

func main() {
	var (
		out     = flag.String("out", "kvsim-report", "directory for KVSIM.md and the PNG plots")
		seeds   = flag.Int("seeds", 3, "number of seeds (1, 2, …)")
		scale   = flag.Float64("scale", 1, "multiplies every workload's duration")
		only    = flag.String("only", "", "comma-separated workload names (default all)")
		nosweep = flag.Bool("nosweep", false, "skip the sweep of PrefixAffinity's knobs")
	)
	flag.Parse()
	if *seeds < 1 {
		log.Fatal("kvsim: -seeds must be at least 1")
	}
	o := kvsim.Options{Scale: *scale, Log: log.Printf, Sweep: !*nosweep}
	for i := range *seeds {
		o.Seeds = append(o.Seeds, uint64(i+1))
	}
	if *only != "" {
		for _, name := range strings.Split(*only, ",") {
			found := false
			for _, sp := range kvsim.Specs {
				if sp.Name == strings.TrimSpace(name) {
					o.Specs = append(o.Specs, sp)
					found = true
				}
			}
			if !found {
				log.Fatalf("kvsim: no workload %q", name)
			}
		}
	}
	s, err := kvsim.RunSuite(o)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	plots, err := s.Plots(*out)
	if err != nil {
		log.Fatal(err)
	}
	file := filepath.Join(*out, "KVSIM.md")
	if err := os.WriteFile(file, []byte(s.Markdown(plots)), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println(file)
}
