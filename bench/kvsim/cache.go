package kvsim

// cache is one replica's KV memory as vLLM's automatic prefix caching
// manages it: capacity is counted in blocks of BlockTokens tokens; a block
// is named by its chained hash (so a name stands for the whole prefix up to
// it); blocks that running requests use are pinned (referenced); blocks no
// request uses stay cached in a least-recently-used free queue until their
// space is needed.
//
// Simplifications, each a deliberate one: a request's output is counted as
// pinned blocks while it runs and cached (under the names the workload gave
// it) once it ends; a block being computed by one request is shared by a
// concurrent request with the same prefix (vLLM would compute it twice) but
// counts as a hit only once computed.
type cache struct {
	capacity int
	used     int // entries (cached or pinned) plus pinned output blocks
	index    map[uint64]int32
	entries  []entry
	free     []int32 // recycled entry slots
	head     int32   // least recently freed unpinned entry; -1 if none
	tail     int32   // most recently freed
}

type entry struct {
	hash       uint64
	ref        int32
	computed   bool
	prev, next int32 // free-queue links while ref == 0
	live       bool
}

func newCache(capacity int) *cache {
	return &cache{capacity: capacity, index: make(map[uint64]int32), head: -1, tail: -1}
}

// match returns how many leading blocks of prompt are cached and computed.
func (c *cache) match(prompt []uint64) int {
	n := 0
	for _, h := range prompt {
		i, ok := c.index[h]
		if !ok || !c.entries[i].computed {
			break
		}
		n++
	}
	return n
}

// need returns how many blocks admitting prompt and out output blocks
// would add.
func (c *cache) need(prompt []uint64, out int) int {
	n := out
	for _, h := range prompt {
		if _, ok := c.index[h]; !ok {
			n++
		}
	}
	return n
}

// reserve evicts least recently used unpinned blocks until n more fit;
// force admits even if they do not (the replica has nothing running, so
// waiting would never end). It reports whether n blocks were admitted.
func (c *cache) reserve(n int, force bool) bool {
	for c.used+n > c.capacity && c.head >= 0 {
		c.evict(c.head)
	}
	return c.used+n <= c.capacity || force
}

func (c *cache) evict(i int32) {
	e := &c.entries[i]
	c.unlink(i)
	delete(c.index, e.hash)
	e.live = false
	c.free = append(c.free, i)
	c.used--
}

// pin references every block of prompt, creating the missing ones, and
// counts out pinned output blocks.
func (c *cache) pin(prompt []uint64, out int) {
	for _, h := range prompt {
		if i, ok := c.index[h]; ok {
			if c.entries[i].ref == 0 {
				c.unlink(i)
			}
			c.entries[i].ref++
			continue
		}
		c.index[h] = c.alloc(entry{hash: h, ref: 1, prev: -1, next: -1, live: true})
		c.used++
	}
	c.used += out
}

// computed marks prompt's blocks as holding their KV.
func (c *cache) computed(prompt []uint64) {
	for _, h := range prompt {
		if i, ok := c.index[h]; ok {
			c.entries[i].computed = true
		}
	}
}

// release unpins prompt and its out pinned output blocks, and caches the
// output under the names in outNames (as many as fit in out). Blocks go to
// the free queue tail first, so that a prefix's deepest blocks are evicted
// before its head, as vLLM does.
func (c *cache) release(prompt []uint64, out int, outNames []uint64) {
	c.used -= out
	for j := len(outNames) - 1; j >= 0; j-- {
		h := outNames[j]
		if _, ok := c.index[h]; ok {
			continue
		}
		if !c.reserve(1, false) {
			break
		}
		i := c.alloc(entry{hash: h, computed: true, prev: -1, next: -1, live: true})
		c.index[h] = i
		c.used++
		c.push(i)
	}
	for j := len(prompt) - 1; j >= 0; j-- {
		i, ok := c.index[prompt[j]]
		if !ok {
			continue
		}
		e := &c.entries[i]
		if e.ref--; e.ref == 0 {
			c.push(i)
		}
	}
}

// wipe forgets every cached block, as a restarted server does; pinned
// blocks stay allocated but hold nothing reusable.
func (c *cache) wipe() {
	for c.head >= 0 {
		c.evict(c.head)
	}
	for i := range c.entries {
		c.entries[i].computed = false
	}
}

func (c *cache) alloc(e entry) int32 {
	if n := len(c.free); n > 0 {
		i := c.free[n-1]
		c.free = c.free[:n-1]
		c.entries[i] = e
		return i
	}
	c.entries = append(c.entries, e)
	return int32(len(c.entries) - 1)
}

// push appends i to the free queue as its most recent entry.
func (c *cache) push(i int32) {
	e := &c.entries[i]
	e.prev, e.next = c.tail, -1
	if c.tail >= 0 {
		c.entries[c.tail].next = i
	} else {
		c.head = i
	}
	c.tail = i
}

func (c *cache) unlink(i int32) {
	e := &c.entries[i]
	if e.prev >= 0 {
		c.entries[e.prev].next = e.next
	} else {
		c.head = e.next
	}
	if e.next >= 0 {
		c.entries[e.next].prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = -1, -1
}
