package health

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

// BenchmarkObserveAllowed is the balancer's hot path: ask, call, report,
// from many goroutines over a pool of 8 members (with a hook installed, so
// that the no-allocation claim covers reporting too).
func BenchmarkObserveAllowed(b *testing.B) {
	tr, err := New(Config{OnStateChange: func(StateChange) {}})
	if err != nil {
		b.Fatal(err)
	}
	ms := make([]*Member, 8)
	for i := range ms {
		ms[i] = tr.Add(fmt.Sprint("m", i))
	}
	var next atomic.Uint32
	o := sturdy.Outcome{Class: sturdy.Success, Latency: 30 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1))
		for pb.Next() {
			m := ms[i%len(ms)]
			i++
			if m.Allowed() {
				m.Observe(o)
			}
		}
	})
}

func BenchmarkAllowedHealthy(b *testing.B) {
	tr, _ := New(Config{})
	m := tr.Add("a")
	b.ReportAllocs()
	for b.Loop() {
		if !m.Allowed() {
			b.Fatal("not allowed")
		}
	}
}

func BenchmarkAllowedEjected(b *testing.B) {
	tr, _ := New(Config{})
	m := tr.Add("a")
	m.Observe(sturdy.Outcome{Class: sturdy.Auth})
	b.ReportAllocs()
	for b.Loop() {
		if m.Allowed() {
			b.Fatal("allowed")
		}
	}
}

func BenchmarkEpoch(b *testing.B) {
	tr, _ := New(Config{})
	for i := range 8 {
		tr.Add(fmt.Sprint("m", i))
	}
	tr.Member("m0").Observe(sturdy.Outcome{Class: sturdy.Auth}) // an ejection pending
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Epoch()
		}
	})
}

// BenchmarkObserveFailureEject measures the rare path: an auth failure
// ejecting a member, with the hook fired after unlocking.
func BenchmarkObserveFailureEject(b *testing.B) {
	tr, _ := New(Config{MaxEjectedShare: 1, OnStateChange: func(StateChange) {}})
	m := tr.Add("a")
	auth := sturdy.Outcome{Class: sturdy.Auth}
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(auth)
		m.ProbeResult(nil) // back to probation for the next round
	}
}

// BenchmarkObserveSuccess is what the balancer's done costs health for
// the usual outcome: a success on a healthy member, on one goroutine.
func BenchmarkObserveSuccess(b *testing.B) {
	tr, _ := New(Config{})
	m := tr.Add("a")
	o := sturdy.Outcome{Class: sturdy.Success, Latency: 30 * time.Millisecond, End: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(o)
	}
	if m.State() != Healthy {
		b.Fatal("not healthy")
	}
}
