package balancer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
)

func TestUpdateKeepsPeakEWMAOfEndpointsThatStay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Endpoints: pool("a", "slow"), Seed: 1})
		// Learn that slow is slow.
		for range 200 {
			ep, done, _ := b.Pick(context.Background(), nil)
			d := 10 * time.Millisecond
			if ep.Name == "slow" {
				d = 500 * time.Millisecond
			}
			time.Sleep(d)
			done(sturdy.Outcome{Latency: d})
		}
		// New address for slow, a new endpoint c. Had slow's state been
		// reset it would start at DefaultRTT, tie with c and win half of
		// the pairs they form.
		next := pool("a", "slow", "c")
		next[1].Address = "http://slow-v2"
		if err := b.Update(next); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			ep, done, _ := b.Pick(context.Background(), nil)
			if ep.Name == "slow" {
				t.Fatal("picked slow right after Update: its learned cost was lost")
			}
			time.Sleep(10 * time.Millisecond)
			done(sturdy.Outcome{Latency: 10 * time.Millisecond})
		}
		if got := b.Endpoints()[1].Address; got != "http://slow-v2" {
			t.Errorf("slow's Address after Update = %q, want the new one", got)
		}
	})
}

func TestUpdateKeepsOutstandingOfEndpointsThatStay(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b"), Policy: LeastOutstanding, Seed: 1})
	var onA []func(sturdy.Outcome)
	for range 3 {
		ep, done, err := b.Pick(context.Background(), []string{"b"})
		if err != nil || ep.Name != "a" {
			t.Fatalf("Pick = %v, %v; want a", ep, err)
		}
		onA = append(onA, done)
	}
	if err := b.Update(pool("b", "c", "a")); err != nil {
		t.Fatal(err)
	}
	// a still has 3 in flight: b and c take the next 4 (2 each) first.
	var held []func(sturdy.Outcome)
	for i := range 4 {
		ep, done, err := b.Pick(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ep.Name == "a" {
			t.Fatalf("pick %d went to a, which still has 3 attempts in flight", i)
		}
		held = append(held, done)
	}
	// The old snapshot's done funcs settle a's carried-over counter.
	for _, done := range onA {
		done(sturdy.Outcome{})
	}
	if n := pickName(t, b); n != "a" {
		t.Errorf("after a's attempts ended, picked %s; want a (idle, the others hold 2)", n)
	}
	for _, done := range held {
		done(sturdy.Outcome{})
	}
}

func TestUpdateDropsRemovedEndpoints(t *testing.T) {
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool("a", "b", "c"), Policy: p, Seed: 1})
			_, doneOld, err := b.Pick(context.Background(), []string{"a", "c"}) // in flight on b
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Update(pool("c", "d")); err != nil {
				t.Fatal(err)
			}
			doneOld(sturdy.Outcome{}) // an attempt on a dropped endpoint may still end
			for _, n := range pickNames(t, b, 50) {
				if n != "c" && n != "d" {
					t.Fatalf("picked %s after Update dropped it", n)
				}
			}
			if got := names(b.Endpoints()); !slices.Equal(got, []string{"c", "d"}) {
				t.Errorf("Endpoints = %v, want [c d]", got)
			}
			if err := b.Update(nil); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Pick(context.Background(), nil); err == nil {
				t.Error("Pick on an emptied pool succeeded")
			}
		})
	}
}

func TestPickConcurrentWithUpdate(t *testing.T) {
	sets := [][]sturdy.Endpoint{pool("a", "b", "c"), pool("b", "c", "d", "e"), pool("e")}
	valid := map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": true}
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			tr := newTracker(t)
			b := mustNew(t, Config{Endpoints: sets[0], Policy: p, Health: tr})
			var stop atomic.Bool
			var picks atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for w := range 3 {
				wg.Go(func() {
					for i := 0; !stop.Load(); i++ {
						ep, done, err := b.Pick(context.Background(), []string{fmt.Sprint("abcde"[(w+i)%5 : (w+i)%5+1])})
						if err != nil {
							continue // "e" alone and excluded
						}
						if !valid[ep.Name] {
							errs <- fmt.Errorf("picked unknown endpoint %q", ep.Name)
							return
						}
						_ = b.Endpoints()
						picks.Add(1)
						done(sturdy.Outcome{Class: sturdy.Success, Latency: time.Duration(i % 7)})
					}
				})
			}
			for i := 0; i < 300 || picks.Load() < 3000; i++ {
				if err := b.Update(sets[i%len(sets)]); err != nil {
					t.Error(err)
				}
			}
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
