package chain

import (
	"errors"
	"slices"
	"testing"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
)

func tooLarge(limit int) sturdy.Outcome {
	return sturdy.Outcome{Class: sturdy.TooLarge, Err: &WindowError{Limit: limit, Err: errors.New("400")}}
}

// With every window left at zero, a too-large answer falls back rather
// than end the call, and the windows the answers named are learned: a
// later call skips a tier known to be smaller.
func TestTooLargeLearnsWindowsFromAnswers(t *testing.T) {
	b := &backend{by: map[string]sturdy.Outcome{"a": tooLarge(8192), "b": tooLarge(4096)}}
	c := mustChain(t, Config{Tiers: []Tier{
		{Name: "a", Model: "m-8k", Picker: fakepick.New("a")},
		{Name: "b", Model: "m-4k", Picker: fakepick.New("b")},
		{Name: "c", Model: "m-big", Picker: fakepick.New("c")},
	}})
	v, tier, err := runCall(c, b, Call[string]{})
	if err != nil || tier != 2 || v != "tier2/c" {
		t.Fatalf("v=%q tier=%d err=%v", v, tier, err)
	}
	if got := b.seen(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("first call %v: b's window was unknown, so it was tried", got)
	}
	if c.LearnedWindow(0) != 8192 || c.LearnedWindow(1) != 4096 || c.LearnedWindow(2) != 0 {
		t.Fatalf("learned %d %d %d", c.LearnedWindow(0), c.LearnedWindow(1), c.LearnedWindow(2))
	}
	if _, tier, err = runCall(c, b, Call[string]{}); err != nil || tier != 2 {
		t.Fatalf("tier=%d err=%v", tier, err)
	}
	if got := b.seen()[3:]; !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("second call %v: b (4096 learned) is smaller than a's 8192", got)
	}
}

func TestTooLargeWithoutAnyWindowFallsBack(t *testing.T) {
	b := &backend{by: map[string]sturdy.Outcome{"a": {Class: sturdy.TooLarge}}}
	c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("a")}, {Picker: fakepick.New("b")}}})
	if _, tier, err := runCall(c, b, Call[string]{}); err != nil || tier != 1 {
		t.Fatalf("tier=%d err=%v: a too-large answer with no window known must fall back", tier, err)
	}
}

func TestConfiguredWindowsTakePrecedence(t *testing.T) {
	// a is configured at 8000 though its answer names 4096; b is
	// configured at 6000: not larger than a's configured 8000.
	b := &backend{by: map[string]sturdy.Outcome{"a": tooLarge(4096)}}
	c := mustChain(t, Config{Tiers: []Tier{
		{Name: "a", Model: "m", ContextWindow: 8000, Picker: fakepick.New("a")},
		{Name: "b", Model: "m2", ContextWindow: 6000, Picker: fakepick.New("b")},
		{Name: "c", Model: "m3", Picker: fakepick.New("c")},
	}})
	if _, tier, err := runCall(c, b, Call[string]{}); err != nil || tier != 2 {
		t.Fatalf("tier=%d err=%v", tier, err)
	}
	if c.LearnedWindow(0) != 0 {
		t.Fatalf("a configured window is not overwritten by a learned one: %d", c.LearnedWindow(0))
	}
}

func TestTierWithoutModelLearnsNothing(t *testing.T) {
	b := &backend{by: map[string]sturdy.Outcome{"a": tooLarge(4096)}}
	c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("a")}, {Model: "big", Picker: fakepick.New("b")}}})
	if _, tier, err := runCall(c, b, Call[string]{}); err != nil || tier != 1 {
		t.Fatalf("tier=%d err=%v", tier, err)
	}
	if c.LearnedWindow(0) != 0 {
		t.Fatalf("a tier serving the caller's model learned %d", c.LearnedWindow(0))
	}
}
