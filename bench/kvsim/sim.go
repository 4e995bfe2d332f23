package kvsim

import (
	"container/heap"
	"fmt"
	"slices"
	"time"
)

// Result is one client's run of one workload for one seed.
type Result struct {
	Workload string
	Client   string
	Seed     uint64
	Requests int // measured: arrived after the warm-up
	// HitRate is cached prompt tokens over prompt tokens, of measured
	// requests.
	HitRate float64
	// TTFT percentiles of measured requests (every one finishes: runs
	// drain).
	P50, P90, P99 time.Duration
	// OutputRate is output tokens a second generated between the warm-up
	// and the end of arrivals.
	OutputRate float64
	// LoadSkew is the busiest replica's mean requests in flight over the
	// fleet's mean, between the warm-up and the end of arrivals.
	LoadSkew float64
	// MaxLoad and MeanLoad are those two means.
	MaxLoad, MeanLoad float64
}

// sim is one run: the event queue, the fleet and what is measured.
type sim struct {
	w        *Workload
	hw       Hardware
	replicas []*replica
	active   int // replicas serving; ScaleOut raises it
	router   Router
	events   eventHeap
	seq      uint64
	stats    stats
}

// Run simulates w served by a fleet of hw replicas, routed by the router
// that c builds (seeded with seed), in virtual time: the same inputs give the same
// Result. Its cost is a few operations per request and per scheduler
// iteration.
func Run(w *Workload, hw Hardware, c Client, seed uint64) (Result, error) {
	hw.CapacityBlocks = w.Capacity
	s := &sim{w: w, hw: hw, active: w.Replicas}
	for i := range w.Max {
		s.replicas = append(s.replicas, newReplica(i, hw))
	}
	r, err := c.New(s.view(), seed)
	if err != nil {
		return Result{}, fmt.Errorf("kvsim: client %s: %w", c.Name, err)
	}
	s.router = r
	s.stats = newStats(w)
	for i := range w.Requests {
		s.at(w.Requests[i].At, evArrival, i)
	}
	for i, e := range w.Events {
		s.at(e.At, evFleet, i)
	}
	for len(s.events) > 0 {
		e := heap.Pop(&s.events).(event)
		switch e.kind {
		case evArrival:
			if err := s.arrive(e.t, &w.Requests[e.i]); err != nil {
				return Result{}, err
			}
		case evStep:
			rp := s.replicas[e.i]
			rp.busy = false
			rp.end(s, e.t)
			s.kick(rp, e.t)
		case evFleet:
			if err := s.fleet(e.t, w.Events[e.i]); err != nil {
				return Result{}, err
			}
		}
	}
	res := s.stats.result(s.replicas, w)
	res.Workload, res.Client, res.Seed = w.Name, c.Name, seed
	return res, nil
}

func (s *sim) arrive(now time.Duration, req *Request) error {
	i, done, err := s.router.Pick(req, now)
	if err != nil {
		return fmt.Errorf("kvsim: pick at %v: %w", now, err)
	}
	if i < 0 || i >= s.active {
		return fmt.Errorf("kvsim: router picked replica %d of %d", i, s.active)
	}
	rp := s.replicas[i]
	j := &job{req: req, at: now, done: done, replica: i,
		outBlk:   (req.Output + BlockTokens - 1) / BlockTokens,
		measured: now >= s.w.Warmup}
	rp.queue = append(rp.queue, j)
	rp.inflight++
	s.kick(rp, now)
	return nil
}

// kick starts rp's next iteration if it is idle and has work; a busy
// replica starts its next when the current one ends.
func (s *sim) kick(rp *replica, now time.Duration) {
	if rp.busy {
		return
	}
	if d, ok := rp.plan(s); ok {
		rp.busy = true
		s.at(now+d, evStep, rp.id)
	}
}

func (s *sim) fleet(now time.Duration, e Event) error {
	switch e.Kind {
	case Restart:
		s.replicas[e.Replica].cache.wipe()
	case ScaleOut:
		if s.active < len(s.replicas) {
			s.active++
			s.stats.joined[s.active-1] = now
			return s.router.Update(s.view())
		}
	}
	return nil
}

func (s *sim) view() Fleet { return Fleet{sim: s} }

func (s *sim) at(t time.Duration, k evKind, i int) {
	s.seq++
	heap.Push(&s.events, event{t: t, seq: s.seq, kind: k, i: i})
}

type evKind uint8

const (
	evArrival evKind = iota
	evStep
	evFleet
)

type event struct {
	t    time.Duration
	seq  uint64
	kind evKind
	i    int
}

// eventHeap orders events by time, then by the order they were made, so
// that runs are deterministic.
type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, k int) bool {
	if h[i].t != h[k].t {
		return h[i].t < h[k].t
	}
	return h[i].seq < h[k].seq
}
func (h eventHeap) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// stats is what a run measures.
type stats struct {
	warm, end      time.Duration
	ttft           []time.Duration
	prompt, cached int64
	out            int64
	busy           []time.Duration // per replica: Σ request time in flight inside the window
	joined         []time.Duration // when each replica started serving
}

func newStats(w *Workload) stats {
	st := stats{warm: w.Warmup, end: w.Duration, busy: make([]time.Duration, w.Max), joined: make([]time.Duration, w.Max)}
	for i := w.Replicas; i < w.Max; i++ {
		st.joined[i] = -1
	}
	return st
}

func (st *stats) first(j *job, at time.Duration) {
	if j.measured {
		st.ttft = append(st.ttft, at-j.at)
	}
}

func (st *stats) output(now time.Duration, n int) {
	if now >= st.warm && now < st.end {
		st.out += int64(n)
	}
}

func (st *stats) done(j *job, now time.Duration) {
	lo, hi := max(j.at, st.warm), min(now, st.end)
	if hi > lo {
		st.busy[j.replica] += hi - lo
	}
}

func (st *stats) result(rs []*replica, w *Workload) Result {
	var res Result
	res.Requests = len(st.ttft)
	if st.prompt > 0 {
		res.HitRate = float64(st.cached) / float64(st.prompt)
	}
	slices.Sort(st.ttft)
	res.P50, res.P90, res.P99 = quantile(st.ttft, 0.5), quantile(st.ttft, 0.9), quantile(st.ttft, 0.99)
	win := st.end - st.warm
	res.OutputRate = float64(st.out) / win.Seconds()
	var sum float64
	n := 0
	for i := range rs {
		from := max(st.joined[i], st.warm)
		if st.joined[i] < 0 || from >= st.end {
			continue
		}
		l := float64(st.busy[i]) / float64(st.end-from)
		sum += l
		n++
		res.MaxLoad = max(res.MaxLoad, l)
	}
	if n > 0 && sum > 0 {
		res.MeanLoad = sum / float64(n)
		res.LoadSkew = res.MaxLoad / res.MeanLoad
	}
	return res
}

// quantile is the nearest-rank q-quantile of sorted xs.
func quantile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs)) + 0.5)
	return xs[min(max(i-1, 0), len(xs)-1)]
}
