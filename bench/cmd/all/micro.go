package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// bench is the median of one benchmark's runs.
type bench struct {
	NsOp, BOp, AllocsOp float64
	Runs                []float64 // ns/op of each run
	// CPUOp and CPURuns are the same of cpu-ns/op, which benchmarks that
	// report it (BenchmarkTelemetry) give: the process's CPU time per op.
	CPUOp   float64
	CPURuns []float64
}

// microSet is a group of benchmarks run in passes: each pass runs every
// benchmark of the group once (go test -count 1), so that peers are
// interleaved and drift in the machine's load hits them alike.
type microSet struct {
	Pattern string
	Passes  int
}

// runMicro runs the bench module's benchmarks and returns the median of
// each by name (without the -GOMAXPROCS suffix), in order of first
// appearance, and the commands it ran.
func runMicro(dir string, sets []microSet, benchtime string) (map[string]*bench, []string, []string, error) {
	var all bytes.Buffer
	var cmds []string
	for _, set := range sets {
		args := []string{"test", "-run", "^$", "-bench", set.Pattern, "-benchmem", "-count", "1", "-benchtime", benchtime, "."}
		shown := strings.Join(args, " ")
		shown = strings.Replace(shown, "-run ^$", "-run '^$'", 1)
		shown = strings.Replace(shown, "-bench "+set.Pattern, "-bench '"+set.Pattern+"'", 1)
		cmds = append(cmds, fmt.Sprintf("for i in $(seq %d); do go %s; done", set.Passes, shown))
		for range set.Passes {
			cmd := exec.Command("go", args...)
			cmd.Dir = dir
			cmd.Stderr = os.Stderr
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Run(); err != nil {
				return nil, nil, nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
			}
			all.Write(out.Bytes())
		}
	}
	type acc struct{ ns, b, allocs, cpu []float64 }
	accs := map[string]*acc{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(all.Bytes()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		a := accs[name]
		if a == nil {
			a = &acc{}
			accs[name] = a
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				a.ns = append(a.ns, v)
			case "B/op":
				a.b = append(a.b, v)
			case "allocs/op":
				a.allocs = append(a.allocs, v)
			case "cpu-ns/op":
				a.cpu = append(a.cpu, v)
			}
		}
	}
	res := map[string]*bench{}
	for name, a := range accs {
		res[name] = &bench{NsOp: median(a.ns), BOp: median(a.b), AllocsOp: median(a.allocs), Runs: a.ns,
			CPUOp: median(a.cpu), CPURuns: a.cpu}
	}
	return res, order, cmds, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
