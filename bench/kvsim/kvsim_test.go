package kvsim

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCacheEvictsLeastRecentlyUsedUnpinnedBlocks(t *testing.T) {
	c := newCache(6)
	a := chain(0, fixed(1, 3))
	b := chain(0, fixed(2, 3))
	for _, p := range [][]uint64{a, b} {
		if !c.reserve(c.need(p, 0), false) {
			t.Fatalf("%d blocks do not fit an empty cache of 6", len(p))
		}
		c.pin(p, 0)
		c.computed(p)
		c.release(p, 0, nil)
	}
	if got := c.match(a); got != 3 {
		t.Fatalf("a: %d blocks cached, want 3", got)
	}
	// Use a again: b becomes the least recently used.
	c.pin(a, 0)
	c.release(a, 0, nil)
	d := chain(0, fixed(3, 2))
	if !c.reserve(c.need(d, 0), false) {
		t.Fatal("2 blocks do not fit after eviction")
	}
	c.pin(d, 0)
	if got := c.match(a); got != 3 {
		t.Errorf("a: %d blocks cached after evicting for d, want 3 (b was older)", got)
	}
	// b's deepest blocks go first: its head survives.
	if got := c.match(b); got != 1 {
		t.Errorf("b: %d leading blocks cached, want 1 (its tail evicted first)", got)
	}
	if got := c.match(d); got != 0 {
		t.Errorf("d: %d blocks count as hits before they are computed, want 0", got)
	}
	// Pinned blocks are never evicted: pin a too; only b's head is free.
	c.pin(a, 0)
	if !c.reserve(1, false) || c.match(b) != 0 {
		t.Fatal("reserve(1) did not evict b's head, the one unpinned block")
	}
	c.pin(chain(0, fixed(4, 1)), 0)
	if c.reserve(1, false) {
		t.Error("reserve succeeded though every block is pinned")
	}
	if !c.reserve(1, true) {
		t.Error("a forced reserve failed")
	}
	if c.used != 6 {
		t.Errorf("used %d, want 6", c.used)
	}
}

func TestCacheCountsPrefixHitsOnly(t *testing.T) {
	c := newCache(100)
	p := chain(0, fixed(1, 4), fixed(2, 4))
	c.pin(p, 0)
	c.computed(p)
	c.release(p, 0, nil)
	q := chain(0, fixed(1, 4), fixed(3, 4)) // same first 4 blocks, then different
	if got := c.match(q); got != 4 {
		t.Errorf("shared prefix: %d hits, want 4", got)
	}
	r := chain(0, fixed(9, 1), fixed(2, 4)) // same later contents, different start
	if got := c.match(r); got != 0 {
		t.Errorf("different start: %d hits, want 0 (names are chained)", got)
	}
	c.wipe()
	if got := c.match(p); got != 0 {
		t.Errorf("after wipe: %d hits, want 0", got)
	}
}

// small returns the workloads shortened for tests.
func small(t *testing.T, name string, seed uint64) Workload {
	t.Helper()
	for _, sp := range Specs {
		if sp.Name == name {
			return sp.Gen(seed, 0.5)
		}
	}
	t.Fatalf("no workload %q", name)
	return Workload{}
}

func client(t *testing.T, name string) Client {
	t.Helper()
	for _, c := range Clients() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no client %q", name)
	return Client{}
}

func run(t *testing.T, w Workload, c string, seed uint64) Result {
	t.Helper()
	r, err := Run(&w, DefaultHardware, client(t, c), seed)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunIsDeterministicForASeed(t *testing.T) {
	for _, c := range []string{"p2c-peak-ewma", "prefix-affinity ×4", "oracle"} {
		a := run(t, small(t, "zipf", 7), c, 7)
		b := run(t, small(t, "zipf", 7), c, 7)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs of seed 7 differ:\n%+v\n%+v", c, a, b)
		}
		if d := run(t, small(t, "zipf", 8), c, 8); reflect.DeepEqual(a, d) {
			t.Errorf("%s: seeds 7 and 8 give the same result", c)
		}
	}
}

func TestOracleBeatsRoundRobinOnSharedContext(t *testing.T) {
	w := small(t, "shared-context", 1)
	rr, or := run(t, w, "round-robin", 1), run(t, w, "oracle", 1)
	if or.HitRate < 2*rr.HitRate || or.HitRate < 0.5 {
		t.Errorf("hit rate: oracle %.3f, round-robin %.3f; want the oracle above 0.5 and twice round-robin", or.HitRate, rr.HitRate)
	}
	aff := run(t, w, "prefix-affinity", 1)
	if aff.HitRate <= rr.HitRate {
		t.Errorf("hit rate: prefix-affinity %.3f, round-robin %.3f; want affinity higher", aff.HitRate, rr.HitRate)
	}
}

func TestNoSharingGivesNoHits(t *testing.T) {
	for _, c := range []string{"round-robin", "prefix-affinity", "oracle"} {
		r := run(t, small(t, "no-sharing", 1), c, 1)
		if r.HitRate > 0.001 {
			t.Errorf("%s: hit rate %.4f on unique prompts, want ~0", c, r.HitRate)
		}
		if r.Requests == 0 || r.P90 <= 0 {
			t.Errorf("%s: %d requests, p90 %v", c, r.Requests, r.P90)
		}
	}
}

func TestEveryRequestIsServedAndTimed(t *testing.T) {
	w := small(t, "events", 2)
	r := run(t, w, "p2c-peak-ewma", 2)
	measured := 0
	for _, q := range w.Requests {
		if q.At >= w.Warmup {
			measured++
		}
	}
	if r.Requests != measured {
		t.Errorf("%d requests timed, want %d (every one after the warm-up)", r.Requests, measured)
	}
	if min := DefaultHardware.Overhead + DefaultHardware.StepBase; r.P50 < min {
		t.Errorf("TTFT p50 %v below the least possible %v", r.P50, min)
	}
}

// TestSuiteEndToEnd is a small whole run: every workload and client, one
// seed, a tenth of the duration, with the report and plots.
func TestSuiteEndToEnd(t *testing.T) {
	start := time.Now()
	s, err := RunSuite(Options{Seeds: []uint64{1}, Scale: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(Specs) * len(Clients()); len(s.Runs) != want {
		t.Fatalf("%d runs, want %d", len(s.Runs), want)
	}
	dir := t.TempDir()
	plots, err := s.Plots(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range plots {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("plot %s: %v", f, err)
		}
	}
	md := s.Markdown(plots)
	for _, want := range []string{"## Targets", "prefix-affinity ×4", "| shared-context | oracle | 1 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	t.Logf("%d runs in %v", len(s.Runs), time.Since(start))
}
