package policy

import (
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

// BenchmarkRetryObserve is what the default retry policy's Observe costs
// an attempt, on one goroutine: a first attempt's success (the adaptive
// timeout's sample, its refresh every refreshEvery samples amortized) and
// a retry's success (the learning budget's count too).
func BenchmarkRetryObserve(b *testing.B) {
	for _, kind := range []sturdy.AttemptKind{sturdy.First, sturdy.Retry} {
		b.Run(kind.String(), func(b *testing.B) {
			p, err := NewRetry(RetryConfig{})
			if err != nil {
				b.Fatal(err)
			}
			o := sturdy.Outcome{Class: sturdy.Success, End: time.Now()}
			i := 0
			observe := func() {
				i++
				o.Latency = time.Duration(800+i%400) * time.Microsecond
				o.End = o.End.Add(time.Microsecond)
				p.Observe(kind, o)
			}
			// Enough samples first for the adaptive timeout, so that the
			// loop measures a policy in use, whatever b.N.
			for range 5000 {
				observe()
			}
			if p.AttemptTimeout(1, false) == 0 {
				b.Fatal("no adaptive timeout learned")
			}
			b.ReportAllocs()
			for b.Loop() {
				observe()
			}
		})
	}
}
