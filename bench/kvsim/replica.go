package kvsim

import (
	"container/heap"
	"time"
)

// job is one request on a replica.
type job struct {
	req      *Request
	at       time.Duration
	done     func(end time.Duration) // reports the end to the client that picked
	admitted bool
	left     int // prefill tokens still to compute
	chunk    int // prefill tokens in the current iteration
	outBlk   int
	finish   int64 // iteration after which the last token is out
	replica  int
	measured bool // arrived after the warm-up
}

// replica is one model server: a FIFO of requests waiting for or in
// prefill, a decode batch, and its cache (see Hardware).
type replica struct {
	id     int
	hw     Hardware
	cache  *cache
	queue  []*job // waiting or in prefill, in arrival order
	decode jobHeap
	iter   int64
	busy   bool
	step   int // requests decoding in the current iteration
	// inflight is the requests the replica holds, waiting or running.
	inflight int
}

func newReplica(id int, hw Hardware) *replica {
	return &replica{id: id, hw: hw, cache: newCache(hw.CapacityBlocks)}
}

// plan starts an iteration and returns its length, or false if there is
// nothing to do.
func (r *replica) plan(s *sim) (time.Duration, bool) {
	b := len(r.decode)
	budget := r.hw.StepTokens - b
	running := b
	prefill := 0
	for _, j := range r.queue {
		if budget <= 0 {
			break
		}
		if !j.admitted {
			if running >= r.hw.MaxSeqs {
				break
			}
			p := j.req.Prompt
			if !r.cache.reserve(r.cache.need(p, j.outBlk), running == 0) {
				break
			}
			hit := r.cache.match(p)
			r.cache.pin(p, j.outBlk)
			j.admitted = true
			j.left = max((len(p)-hit)*BlockTokens, 1) // a full hit recomputes the last token
			if j.measured {
				s.stats.prompt += int64(j.req.Tokens())
				s.stats.cached += int64(hit * BlockTokens)
			}
		}
		running++
		j.chunk = min(budget, j.left)
		budget -= j.chunk
		prefill += j.chunk
	}
	if b == 0 && prefill == 0 {
		return 0, false
	}
	r.step = b
	return r.hw.StepBase + time.Duration(b)*r.hw.DecodePerSeq + time.Duration(prefill)*r.hw.PrefillPerToken, true
}

// end finishes the current iteration at now.
func (r *replica) end(s *sim, now time.Duration) {
	r.iter++
	s.stats.output(now, r.step)
	for len(r.decode) > 0 && r.decode[0].finish <= r.iter {
		r.complete(s, heap.Pop(&r.decode).(*job), now)
	}
	n := 0
	for _, j := range r.queue {
		if j.chunk == 0 {
			break
		}
		j.left -= j.chunk
		j.chunk = 0
		if j.left > 0 {
			break
		}
		n++
		r.cache.computed(j.req.Prompt)
		s.stats.first(j, now+r.hw.Overhead)
		s.stats.output(now, 1)
		if j.req.Output <= 1 {
			r.complete(s, j, now)
			continue
		}
		j.finish = r.iter + int64(j.req.Output-1)
		heap.Push(&r.decode, j)
	}
	r.queue = r.queue[n:]
}

func (r *replica) complete(s *sim, j *job, now time.Duration) {
	r.cache.release(j.req.Prompt, j.outBlk, j.req.Next)
	r.inflight--
	s.stats.done(j, now)
	j.done(now)
}

// jobHeap orders decoding jobs by the iteration that ends them.
type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, k int) bool { return h[i].finish < h[k].finish }
func (h jobHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(*job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	*h = old[:len(old)-1]
	return j
}
