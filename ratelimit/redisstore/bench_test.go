package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/sturdyai/sturdy/ratelimit"
)

// The benchmarks compare one admission through Redis on loopback:
// sturdy's Limiter on this Store against github.com/go-redis/redis_rate,
// with the same limit, the same redis-server and the same client. The
// limit is one request a microsecond, so every call is admitted and both
// scripts write their key on every call. Each admission is one script
// round trip in both.

const benchRate = 1_000_000

// admitters returns an admission through each library on one Redis
// (sturdy's key is "{sturdy:openai/gpt-4o}:req", redis_rate's
// "rate:openai/gpt-4o").
func admitters(b *testing.B) (sturdy, redisRate func() error) {
	srv := startRedis(b)
	rdb := newClient(b, srv.Addr())
	ctx := context.Background()
	key := string([]byte("openai/gpt-4o")) // not a constant: as a caller's key would be

	s, err := New(Config{Client: rdb, Timeout: time.Second, OnStateChange: func(_ State, err error) {
		b.Errorf("the benchmark fell back to local limits (%v): it did not measure Redis", err)
	}})
	if err != nil {
		b.Fatal(err)
	}
	l, err := ratelimit.New(ratelimit.Config{
		Default: ratelimit.Limit{RequestsPerSecond: benchRate, Burst: benchRate},
		Store:   s,
	})
	if err != nil {
		b.Fatal(err)
	}
	sturdy = func() error {
		_, err := l.Allow(ctx, key, 0)
		return err
	}

	rl := redis_rate.NewLimiter(rdb)
	lim := redis_rate.Limit{Rate: benchRate, Burst: benchRate, Period: time.Second}
	redisRate = func() error {
		res, err := rl.Allow(ctx, key, lim)
		if err == nil && res.Allowed != 1 {
			b.Fatal("redis_rate refused")
		}
		return err
	}
	// Load both scripts and warm the connection, Redis and the CPU, so
	// that whichever sub-benchmark runs first is not penalized.
	for range 500 {
		for _, admit := range []func() error{sturdy, redisRate} {
			if err := admit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	return sturdy, redisRate
}

// BenchmarkAdmission measures one admission at a time.
func BenchmarkAdmission(b *testing.B) {
	sturdy, redisRate := admitters(b)
	for _, bc := range []struct {
		name  string
		admit func() error
	}{{"sturdy", sturdy}, {"redis_rate", redisRate}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.admit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAdmissionParallel measures admissions from GOMAXPROCS
// goroutines at once, sharing the client's connection pool.
func BenchmarkAdmissionParallel(b *testing.B) {
	sturdy, redisRate := admitters(b)
	for _, bc := range []struct {
		name  string
		admit func() error
	}{{"sturdy", sturdy}, {"redis_rate", redisRate}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.admit(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAdmissionInterleaved alternates one admission of each, so that
// the changing load of a shared machine falls on both alike, and reports
// each one's time per admission (ns/op covers the pair).
func BenchmarkAdmissionInterleaved(b *testing.B) {
	sturdy, redisRate := admitters(b)
	var ts, tr time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := sturdy(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := redisRate(); err != nil {
			b.Fatal(err)
		}
		ts += t1.Sub(t0)
		tr += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(ts.Nanoseconds())/float64(n), "sturdy-ns/op")
	b.ReportMetric(float64(tr.Nanoseconds())/float64(n), "redis_rate-ns/op")
}
