package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// fleet is one client's set of fake servers.
type fleet struct {
	specs   []serverSpec
	servers []*fakeServer
	byName  map[string]*fakeServer
}

// startFleet starts every server of the plan on 127.0.0.1.
func startFleet(p plan) (*fleet, error) {
	f := &fleet{specs: p.Servers, byName: map[string]*fakeServer{}}
	for _, sp := range p.Servers {
		s, err := startFake(sp.Cfg)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("starting fake server %s: %w", sp.Name, err)
		}
		f.servers = append(f.servers, s)
		f.byName[sp.Name] = s
	}
	return f, nil
}

// URLs returns the base URLs of the servers of a tier.
func (f *fleet) URLs(tier int) []string {
	var urls []string
	for i, sp := range f.specs {
		if sp.Tier == tier {
			urls = append(urls, f.servers[i].URL())
		}
	}
	return urls
}

// chatRequests returns the chat completions each server received, by name.
func (f *fleet) chatRequests() map[string]int64 {
	m := map[string]int64{}
	for i, sp := range f.specs {
		m[sp.Name] = f.servers[i].Stats().ByPath["/v1/chat/completions"]
	}
	return m
}

// Close stops every server; it waits for their goroutines.
func (f *fleet) Close() {
	for _, s := range f.servers {
		s.Close()
	}
}

// runTimeline applies the plan's events to every fleet at their times
// after start, until ctx is done. It returns when the last event is
// applied or ctx ends, whichever comes first.
func runTimeline(ctx context.Context, start time.Time, events []event, fleets ...*fleet) {
	for _, ev := range events {
		t := time.NewTimer(time.Until(start.Add(ev.At)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		for _, f := range fleets {
			ev.Apply(f.byName[ev.Server])
		}
	}
}

// startTimeline runs runTimeline in a goroutine; the returned func stops it
// and waits for it.
func startTimeline(ctx context.Context, start time.Time, events []event, fleets ...*fleet) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { runTimeline(ctx, start, events, fleets...) })
	return func() { cancel(); wg.Wait() }
}
