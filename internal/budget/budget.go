package budget

import (
	"sync"
	"sync/atomic"
	"time"
)

const buckets = 10

// Budget is a windowed token budget. The zero value is not usable; use New.
// It is safe for concurrent use. Deposit is lock-free; TryWithdraw takes a
// mutex so that concurrent withdrawals cannot overdraw it.
type Budget struct {
	ratio     float64
	reserve   float64 // MinPerSecond × TTL seconds
	bucketDur int64   // nanoseconds
	start     time.Time

	deposits    window
	withdrawals window
	mu          sync.Mutex
}

// New returns a budget that allows ratio extra attempts per call plus
// minPerSecond extra attempts per second, counted over ttl. A zero ttl
// means 10 s. A ratio of zero with a zero floor allows nothing.
func New(ratio, minPerSecond float64, ttl time.Duration) *Budget {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	bd := int64(ttl) / buckets
	if bd <= 0 {
		bd = 1
	}
	return &Budget{
		ratio:     ratio,
		reserve:   minPerSecond * ttl.Seconds(),
		bucketDur: bd,
		start:     time.Now(),
	}
}

func (b *Budget) slot(now time.Time) int64 {
	return int64(now.Sub(b.start)) / b.bucketDur
}

// Deposit records one call.
func (b *Budget) Deposit(now time.Time) { b.deposits.add(b.slot(now), 1) }

// TryWithdraw takes one token for an extra attempt if the budget has one.
func (b *Budget) TryWithdraw(now time.Time) bool {
	s := b.slot(now)
	b.mu.Lock()
	defer b.mu.Unlock()
	balance := b.ratio*float64(b.deposits.sum(s)) + b.reserve - float64(b.withdrawals.sum(s))
	if balance < 1 {
		return false
	}
	b.withdrawals.add(s, 1)
	return true
}

// Balance returns the tokens available now (for metrics and tests).
func (b *Budget) Balance(now time.Time) float64 {
	s := b.slot(now)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ratio*float64(b.deposits.sum(s)) + b.reserve - float64(b.withdrawals.sum(s))
}

// window is a ring of counters, one per bucket of time. A bucket is reset
// by the first writer that finds it holding an older slot; a count racing
// with that reset may be lost, which a budget can afford.
type window struct {
	b [buckets]struct {
		slot  atomic.Int64
		count atomic.Int64
	}
}

func (w *window) add(slot, n int64) {
	bk := &w.b[slot%buckets]
	if old := bk.slot.Load(); old != slot+1 { // slots stored +1 so zero means empty
		if bk.slot.CompareAndSwap(old, slot+1) {
			bk.count.Store(0)
		}
	}
	bk.count.Add(n)
}

func (w *window) sum(slot int64) int64 {
	var total int64
	for i := range w.b {
		s := w.b[i].slot.Load() - 1
		if s > slot-buckets && s <= slot {
			total += w.b[i].count.Load()
		}
	}
	return total
}
