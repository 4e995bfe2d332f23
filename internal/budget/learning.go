package budget

import (
	"sync"
	"time"
)

// OverloadShare is the share of calls answered "overloaded" within the
// window at or above which a Learning budget keeps to its floor.
const OverloadShare = 0.01

// Learning is a retry budget whose ratio is learned from how retries
// fare. It allows MinPerSecond retries per second always, plus
// MaxRatio × s retries per call, where s is the success rate of the
// retries in the window, counted with one pseudo-failure so that s starts
// at 0 and a single lucky retry does not open the budget:
//
//	s = ok / (ok + failed + 1)
//
// Retries that succeed (failures were random, the servers have room) raise
// s toward 1 and the budget toward MaxRatio retries per call; retries that
// fail (an outage) bring it down to the floor, which keeps the SRE book's
// bound on an outage's extra load. While the servers say they are
// overloaded (answers of class Overloaded on any attempt, at least
// OverloadShare of the calls and at least one in the window) the ratio is
// zero whatever s says: retrying an overloaded fleet only adds load.
//
// The zero value is not usable; use NewLearning. It is safe for concurrent
// use.
type Learning struct {
	maxRatio  float64
	reserve   float64 // MinPerSecond × TTL seconds
	bucketDur int64
	start     time.Time

	deposits    window
	withdrawals window
	ok, failed  window // retries' outcomes
	overloaded  window // answers of class Overloaded, any attempt
	mu          sync.Mutex
}

// NewLearning returns a learning budget with ceiling maxRatio retries per
// call and floor minPerSecond, counted over ttl (zero means 10 s).
func NewLearning(maxRatio, minPerSecond float64, ttl time.Duration) *Learning {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	bd := max(int64(ttl)/buckets, 1)
	return &Learning{maxRatio: maxRatio, reserve: minPerSecond * ttl.Seconds(), bucketDur: bd, start: time.Now()}
}

func (b *Learning) slot(now time.Time) int64 { return int64(now.Sub(b.start)) / b.bucketDur }

// Deposit records one call.
func (b *Learning) Deposit(now time.Time) { b.deposits.add(b.slot(now), 1) }

// Retried records how a retry ended: ok is whether it succeeded.
func (b *Learning) Retried(now time.Time, ok bool) {
	if ok {
		b.ok.add(b.slot(now), 1)
	} else {
		b.failed.add(b.slot(now), 1)
	}
}

// Overloaded records an answer of class Overloaded.
func (b *Learning) Overloaded(now time.Time) { b.overloaded.add(b.slot(now), 1) }

// Ratio returns the retries per call the budget allows now, the floor
// aside.
func (b *Learning) Ratio(now time.Time) float64 {
	s := b.slot(now)
	calls := float64(b.deposits.sum(s))
	if over := float64(b.overloaded.sum(s)); over >= 1 && over >= OverloadShare*calls {
		return 0
	}
	ok := float64(b.ok.sum(s))
	return b.maxRatio * ok / (ok + float64(b.failed.sum(s)) + 1)
}

func (b *Learning) balance(now time.Time) float64 {
	s := b.slot(now)
	return b.Ratio(now)*float64(b.deposits.sum(s)) + b.reserve - float64(b.withdrawals.sum(s))
}

// TryWithdraw takes one token for a retry if the budget has one.
func (b *Learning) TryWithdraw(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance(now) < 1 {
		return false
	}
	b.withdrawals.add(b.slot(now), 1)
	return true
}

// Balance returns the tokens available now (for metrics and tests).
func (b *Learning) Balance(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.balance(now)
}
