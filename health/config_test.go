package health

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsValuesThatCannotWork(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"failure rate above 1", Config{FailureRate: 1.5}, "FailureRate"},
		{"failure rate NaN", Config{FailureRate: math.NaN()}, "FailureRate"},
		{"negative min calls", Config{MinCalls: -1}, "MinCalls"},
		{"negative window", Config{Window: -time.Second}, "Window"},
		{"negative base ejection", Config{BaseEjection: -time.Second}, "BaseEjection"},
		{"negative max ejection", Config{MaxEjection: -time.Second}, "MaxEjection"},
		{"max below base", Config{BaseEjection: time.Minute, MaxEjection: time.Second}, "MaxEjection"},
		{"max default below base", Config{BaseEjection: 10 * time.Minute}, "MaxEjection"},
		{"share above 1", Config{MaxEjectedShare: 1.1}, "MaxEjectedShare"},
		{"negative share", Config{MaxEjectedShare: -0.1}, "MaxEjectedShare"},
		{"negative probation successes", Config{ProbationSuccesses: -1}, "ProbationSuccesses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted a config that cannot work")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "health: ") || !strings.Contains(msg, tt.field) {
				t.Fatalf("error %q should start with \"health: \" and name %s", msg, tt.field)
			}
		})
	}
}

func TestNewAppliesDefaultsAndAcceptsRulesOff(t *testing.T) {
	tr, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := tr.cfg
	got := []any{c.ConsecutiveFailures, c.FailureRate, c.MinCalls, c.Window, c.BaseEjection, c.MaxEjection, c.MaxEjectedShare, c.ProbationSuccesses}
	want := []any{5, 0.5, 20, 10 * time.Second, 30 * time.Second, 300 * time.Second, 0.1, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("default %d = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := New(Config{ConsecutiveFailures: -1, FailureRate: -1, MaxEjectedShare: 1}); err != nil {
		t.Fatalf("rules off and share 1 rejected: %v", err)
	}
}

func TestProbeConfigRejectsValuesThatCannotWork(t *testing.T) {
	tests := []struct {
		name  string
		cfg   ProbeConfig
		field string
	}{
		{"negative interval", ProbeConfig{Interval: -1}, "Interval"},
		{"jitter 1", ProbeConfig{Jitter: 1}, "Jitter"},
		{"jitter NaN", ProbeConfig{Jitter: math.NaN()}, "Jitter"},
		{"negative timeout", ProbeConfig{Timeout: -1}, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			if err == nil || !strings.HasPrefix(err.Error(), "health: ") || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("err = %v, want a health: error naming %s", err, tt.field)
			}
		})
	}
}
