package main

import (
	"fmt"

	"github.com/sturdyai/sturdy/bench/kvsim"
	"github.com/sturdyai/sturdy/bench/sim"
)

// kvsimClients are the clients of the BENCHMARKS.md rows: the cache-blind
// balancers, sturdy's PrefixAffinity with the library defaults (one
// client and kvsim.NumClients independent ones) and the oracle. The full
// comparison, knob sweep included, is KVSIM.md.
var kvsimClients = []string{"round-robin", "p2c-peak-ewma", "least-outstanding", "prefix-affinity", "prefix-affinity ×4", "oracle"}

// runKVSim runs the cache-aware routing simulation for seeds 1..seeds:
// every workload under every client, without the knob sweep. It runs in
// virtual time, so its duration depends on the CPU alone (about 10 s a
// seed on two cores).
func runKVSim(seeds int, scale float64, logf func(string, ...any)) (*kvsim.Suite, error) {
	o := kvsim.Options{Scale: scale, Log: logf}
	for i := range seeds {
		o.Seeds = append(o.Seeds, uint64(i+1))
	}
	for _, c := range kvsim.Clients() {
		for _, name := range kvsimClients {
			if c.Name == name {
				o.Clients = append(o.Clients, c)
			}
		}
	}
	return kvsim.RunSuite(o)
}

// kvsimChecks are the targets for the default PrefixAffinity.
func kvsimChecks(s *kvsim.Suite) []sim.Check {
	var out []sim.Check
	for _, c := range s.Checks() {
		out = append(out, sim.Check{Target: fmt.Sprintf("KV %s, %s: %s", c.Workload, c.Client, c.Target), Got: c.Got, Met: c.Met})
	}
	return out
}

func kvsimMarkdown(w func(string, ...any), s *kvsim.Suite) {
	w("## Cache-aware routing (simulated KV caches)\n\n")
	w("A discrete-event simulation in virtual time (package `bench/kvsim`) of 8 vLLM-like replicas of a 7–8B model on one H100 each "+
		"(continuous batching, chunked prefill, a block LRU prefix cache; figures and their sources in "+
		"[bench/kvsim/report/KVSIM.md](bench/kvsim/report/KVSIM.md)), routed by sturdy's real `balancer` with "+
		"`balancer.PrefixKey` keys of the prompt (blocks of 64 tokens, as httpmw hashes 256-byte blocks) or by an oracle that sees every "+
		"cache. Open-loop seeded arrivals, the same for every client; seeds %v; %d runs in %.0f s. `prefix-affinity` is "+
		"`balancer.PrefixAffinity` with the library defaults (Affinity.MinBlocks 8, LoadBound 0.25, WarmLoadBound 1, Index 4096); `×%d` is %d "+
		"independent balancers sharing the fleet, each sending a random quarter of the requests. Hit rate = cached / prompt tokens; "+
		"TTFT includes queueing; load = mean requests in flight per replica, max/mean. Means over seeds, [min–max] where it varies. "+
		"`go run ./bench/cmd/kvsim -out bench/kvsim/report` regenerates the full report (also a knob sweep and plots).\n\n",
		s.Seeds, len(s.Runs), s.Elapsed.Seconds(), kvsim.NumClients, kvsim.NumClients)
	for _, sp := range s.Specs {
		w("### %s\n\n", sp.Title)
		w("| client | hit rate | TTFT p50 | TTFT p90 | TTFT p99 | output tok/s | max/mean load |\n|---|---|---|---|---|---|---|\n")
		for _, c := range s.Clients {
			m, ok := s.Summary(sp.Name, c)
			if !ok {
				continue
			}
			w("| %s | %.3f [%.3f–%.3f] | %s | %s [%s–%s] | %s | %.0f | %.2f [%.2f–%.2f] |\n",
				c, m.HitRate, m.HitMin, m.HitMax, kvsim.FormatDuration(m.P50), kvsim.FormatDuration(m.P90), kvsim.FormatDuration(m.P90Min), kvsim.FormatDuration(m.P90Max), kvsim.FormatDuration(m.P99),
				m.OutputRate, m.LoadSkew, m.SkewMin, m.SkewMax)
		}
		w("\n")
	}
}
