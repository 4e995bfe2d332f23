package main

import (
	"bytes"
	"context"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSturdyBeatsPlain runs the default scenario for a few seconds and
// checks the point of the demo: on the same faults and the same load,
// the client with sturdy succeeds more often and has a shorter tail.
func TestSturdyBeatsPlain(t *testing.T) {
	png := filepath.Join(t.TempDir(), "chaos.png")
	var stdout, stderr bytes.Buffer
	cfg, err := parseFlags([]string{"-duration", "4s", "-rate", "40", "-timeout", "2s", "-every", "1s", "-out", png}, &stderr)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	r, err := runChaos(context.Background(), cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("runChaos: %v\nstderr:\n%s", err, &stderr)
	}
	t.Logf("table:\n%s", &stdout)

	if r.plain.Calls < 100 || r.sturdy.Calls != r.plain.Calls {
		t.Fatalf("calls: plain %d, sturdy %d; want the same, at least 100", r.plain.Calls, r.sturdy.Calls)
	}
	if ps, ss := r.plain.SuccessRate(), r.sturdy.SuccessRate(); !(ss > ps) {
		t.Errorf("success rate: sturdy %.4f, plain %.4f; want sturdy higher", ss, ps)
	}
	p99, _ := r.plain.Percentile(0.99)
	s99, _ := r.sturdy.Percentile(0.99)
	if !(s99 < p99) {
		t.Errorf("p99 latency: sturdy %v, plain %v; want sturdy lower", s99, p99)
	}
	for _, want := range []string{"success rate", "latency p99.9", "extra backend load", "expected quality", "primary-3", "estimate", "picture: " + png} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if !strings.Contains(stderr.String(), "calls ") {
		t.Errorf("no progress line on stderr:\n%s", &stderr)
	}

	f, err := os.Open(png)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ic, format, err := image.DecodeConfig(f)
	if err != nil || format != "png" || ic.Width < 400 || ic.Height < 200 {
		t.Errorf("picture: format %q, %dx%d, err %v; want a PNG of at least 400x200", format, ic.Width, ic.Height, err)
	}
}

// TestBadFlags pins exit status 2 and a message that names the problem.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "nope"}, `unknown -scenario "nope"`},
		{[]string{"-rate", "0"}, "-rate 0 out of range"},
		{[]string{"-duration", "-1s"}, "-duration -1s out of range"},
		{[]string{"-duration", "10m", "-rate", "2000"}, "more than"},
		{[]string{"-timeout", "0s"}, "-timeout 0s out of range"},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"-rate", "fast"}, "invalid value"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, &stderr)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote to stdout: %q", tc.args, &stdout)
		}
	}
}

// TestHelp pins that -h explains the scenarios and exits 0.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	for _, name := range scenarioNames() {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("-h does not explain scenario %q", name)
		}
	}
}

// TestInterrupted pins that a cancelled run (Ctrl-C) stops early, still
// prints the table and exits 0.
func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-duration", "1m", "-rate", "20", "-out", "", "-quiet"}, &stdout, &stderr)
	}()
	time.AfterFunc(1500*time.Millisecond, cancel)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, &stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20 s")
	}
	out := stdout.String()
	if !strings.Contains(out, "stopped early") || !strings.Contains(out, "success rate") {
		t.Errorf("no table after the interruption:\n%s", out)
	}
}
