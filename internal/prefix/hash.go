package prefix

import (
	"encoding/binary"
	"math/bits"
)

// wyhash's secret: odd constants with balanced bits. Changing any of them
// changes every key, so clients built from different versions would stop
// agreeing until all are upgraded.
const (
	k0 = 0xa0761d6478bd642f
	k1 = 0xe7037ed1a0b428db
	k2 = 0x8ebc6af09c88c6e3
	k3 = 0x589965cc75374cc3
)

// mum is wyhash's mixing step: the 128-bit product of a and b, folded.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Mix combines two 64-bit hashes into one; the result depends on their
// order. The balancer scores endpoints with it (Mix(key, name)).
func Mix(a, b uint64) uint64 {
	return mum(a^k0, b^k1)
}

// Sum64 hashes s with seed. It is the hash of names and session keys;
// prompts go through the block chain, which hashes 16 bytes at a time the
// same way.
func Sum64[T ~string | ~[]byte](seed uint64, s T) uint64 {
	n := len(s)
	h := seed ^ k0
	for len(s) >= 16 {
		h = mum(le64(s[:8])^k1, le64(s[8:16])^h)
		s = s[16:]
	}
	var a, b uint64
	for i := range len(s) {
		if i < 8 {
			a |= uint64(s[i]) << (8 * i)
		} else {
			b |= uint64(s[i]) << (8 * (i - 8))
		}
	}
	h = mum(a^k1, b^h)
	return mum(h^k2, uint64(n)^k3)
}

func le64[T ~string | ~[]byte](s T) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// chain hashes a byte stream in blocks of size bytes into out: block i's
// hash is h_i = H(h_{i-1}, block_i), h_0 the seed. Within a block three
// accumulators, started from h_{i-1}, take turns at 16-byte lanes, 48
// bytes a round, as wyhash does for long inputs: the multiplies of a round
// do not wait for one another, which makes the chain three times as fast
// as one accumulator. The bytes after the last round go in 16-byte lanes,
// the last padded with zeros. A block's hash depends only on the bytes
// written, not on how writes split them. Only whole blocks are hashed: a
// trailing partial block is dropped, as a server caches only whole
// blocks. Once out is full, writes are ignored.
//
// A prompt arrives in pieces (roles, separators, the runs between
// rewritten escapes): short writes are gathered in pend and hashed a few
// rounds at a time, long ones hashed where they lie.
type chain struct {
	out  []uint64
	n    int       // blocks hashed
	size int       // bytes per block
	fill int       // bytes of the current block written
	h    uint64    // h_n
	a    [3]uint64 // the current block's accumulators
	pend [5 * 48]byte
	np   int // bytes in pend, which starts on a round
}

func newChain(seed uint64, size int, out []uint64) chain {
	c := chain{out: out, size: size, h: seed}
	c.a = [3]uint64{seed ^ k0, seed ^ k1, seed ^ k2}
	return c
}

func (c *chain) full() bool { return c.n == len(c.out) }

// room is how many more bytes the chain takes.
func (c *chain) room() int { return (len(c.out)-c.n)*c.size - c.fill }

// reset starts the chain again, from zero: Read keys the hashes with the
// seed at the end.
func (c *chain) reset() {
	*c = newChain(0, c.size, c.out)
}

func (c *chain) write(p []byte) {
	if c.np+len(p) < len(c.pend) && c.fill+len(p) < c.size && c.n < len(c.out) {
		// The common short piece: no round, no block to finish.
		c.np += copy(c.pend[c.np:], p)
		c.fill += len(p)
		return
	}
	for len(p) > 0 && c.n < len(c.out) {
		m := min(len(p), c.size-c.fill)
		c.absorb(p[:m])
		c.fill += m
		p = p[m:]
		if c.fill == c.size {
			c.finish()
		}
	}
}

func (c *chain) writeByte(x byte) {
	if c.n == len(c.out) {
		return
	}
	c.pend[c.np] = x
	c.np++
	if c.np == len(c.pend) {
		c.rounds(c.pend[:])
		c.np = 0
	}
	c.fill++
	if c.fill == c.size {
		c.finish()
	}
}

// absorb adds p, which does not cross a block boundary, to the block.
func (c *chain) absorb(p []byte) {
	for len(p) > 0 {
		if c.np == 0 && len(p) >= 48 {
			p = c.rounds(p)
			continue
		}
		k := copy(c.pend[c.np:], p)
		c.np += k
		p = p[k:]
		if c.np == len(c.pend) {
			c.rounds(c.pend[:])
			c.np = 0
		}
	}
}

// rounds absorbs p's whole 48-byte rounds and returns the rest.
func (c *chain) rounds(p []byte) []byte {
	a0, a1, a2 := c.a[0], c.a[1], c.a[2]
	for len(p) >= 48 {
		a0 = mum(binary.LittleEndian.Uint64(p)^k1, binary.LittleEndian.Uint64(p[8:])^a0)
		a1 = mum(binary.LittleEndian.Uint64(p[16:])^k2, binary.LittleEndian.Uint64(p[24:])^a1)
		a2 = mum(binary.LittleEndian.Uint64(p[32:])^k3, binary.LittleEndian.Uint64(p[40:])^a2)
		p = p[48:]
	}
	c.a = [3]uint64{a0, a1, a2}
	return p
}

func (c *chain) finish() {
	tail := c.rounds(c.pend[:c.np])
	acc := c.a[0] ^ c.a[1] ^ c.a[2]
	for len(tail) > 0 {
		var lane [16]byte
		k := copy(lane[:], tail)
		tail = tail[k:]
		acc = mum(le64(lane[:8])^k1, le64(lane[8:])^acc)
	}
	c.h = mum(acc^k2, c.h^k3)
	c.out[c.n] = c.h
	c.n++
	c.fill = 0
	c.np = 0
	c.a = [3]uint64{c.h ^ k0, c.h ^ k1, c.h ^ k2}
}
