package main

import (
	"github.com/sturdyai/sturdy/examples/internal/clitest"

	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunShowsEjectionAndRestoration runs the whole program briefly: the
// draining server must be ejected by a probe and come back, hedges must
// win, and calls must go on.
func TestRunShowsEjectionAndRestoration(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"-duration", "1.8s", "-report", "600ms", "-workers", "2", "-calls", "5000", "-probe", "50ms"}, &out)
	s := out.String()
	t.Logf("output:\n%s", s)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{
		"drain-3: health NOT_SERVING",
		"health: drain-3 healthy → ejected (probe_failure)",
		"health: drain-3 ejected → probation (probe_success)",
		"health: drain-3 probation → healthy (success)",
		"stream: this is ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	ok, failed := summaryCalls(t, s)
	if ok < 50 {
		t.Errorf("only %d calls succeeded", ok)
	}
	// The probe ejects drain-3 before it refuses calls; a failure or two
	// can still slip through when the machine is slow.
	if failed > ok/50 {
		t.Errorf("%d of %d calls failed", failed, ok+failed)
	}
	if m := regexp.MustCompile(`hedges: \d+ sent, (\d+) won`).FindStringSubmatch(s); m == nil || m[1] == "0" {
		t.Errorf("no hedge won: %q", m)
	}
}

func summaryCalls(t *testing.T, s string) (ok, failed int) {
	t.Helper()
	m := regexp.MustCompile(`calls: (\d+) ok, (\d+) failed`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no summary in the output")
	}
	ok, _ = strconv.Atoi(m[1])
	failed, _ = strconv.Atoi(m[2])
	return ok, failed
}

func TestRunFlags(t *testing.T) {
	clitest.Run(t, run, []clitest.Case{
		{Args: []string{"-h"}, WantOut: "Usage: grpc"},
		{Args: []string{"-nope"}, Usage: true},
		{Args: []string{"-workers", "0"}, Usage: true},
		{Args: []string{"-duration", "-1s"}, Usage: true},
		{Args: []string{"extra"}, Usage: true},
	})
}
