package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

func BenchmarkAllowParallel(b *testing.B) {
	for _, bc := range []struct {
		name   string
		lim    Limit
		est    int64
		actual int64
	}{
		// Limits high enough that every call is admitted: the admitted path.
		{"requests", Limit{RequestsPerSecond: 1e9, Burst: 1e9}, 0, -1},
		{"requests+tokens", Limit{RequestsPerSecond: 1e9, Burst: 1e9, TokensPerMinute: 1e15}, 1000, 800},
		// A key that is nearly always refused: the *LimitedError allocation.
		{"refused", Limit{RequestsPerSecond: 1e-3}, 0, -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := New(Config{Default: bc.lim})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			key := string([]byte("openai/gpt-4o")) // not a constant: as a caller's key would be
			if _, err := l.Allow(ctx, key, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if p, err := l.Allow(ctx, key, bc.est); err == nil {
						p.Done(bc.actual)
					}
				}
			})
		})
	}
}

func BenchmarkAllowManyKeysParallel(b *testing.B) {
	l, err := New(Config{Default: Limit{RequestsPerSecond: 1e9, Burst: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = l.Allow(ctx, keys[i%len(keys)], 0)
			i++
		}
	})
}

func BenchmarkThrottleAllow(b *testing.B) {
	th, err := NewThrottle(ThrottleConfig{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if th.Allow() == nil {
				th.Record(i%4 != 0) // the backend accepts three in four
			}
			i++
		}
	})
}

// BenchmarkObserveSuccess is what a learning key's success costs: the
// learner's count of it, on one goroutine, for a key never refused and
// for one paced after a refusal, through Observe and through the key's
// Observer.
func BenchmarkObserveSuccess(b *testing.B) {
	for _, c := range []struct {
		name              string
		refused, observer bool
	}{
		{"unpaced", false, false},
		{"paced", true, false},
		{"observer/unpaced", false, true},
		{"observer/paced", true, true},
	} {
		refused := c.refused
		b.Run(c.name, func(b *testing.B) {
			l, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			key := string([]byte("openai/gpt-4o"))
			end := time.Now()
			if refused {
				l.Observe(key, sturdy.Outcome{Class: sturdy.Overloaded, End: end})
			}
			o := sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond, End: end}
			observe := func(o sturdy.Outcome) { l.Observe(key, o) }
			if c.observer {
				observe = l.Observer(key)
			}
			b.ReportAllocs()
			for b.Loop() {
				o.End = o.End.Add(time.Microsecond)
				observe(o)
			}
		})
	}
}
