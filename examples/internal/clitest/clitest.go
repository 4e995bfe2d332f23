// Package clitest checks how the example programs treat their command
// lines, for their tests.
package clitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sturdyai/sturdy/examples/internal/cli"
)

// Case is one command line: whether it must be refused with a
// cli.UsageError, and text its output must contain.
type Case struct {
	Args    []string
	Usage   bool
	WantOut string
}

// Run runs each case through run as a subtest.
func Run(t *testing.T, run func(ctx context.Context, args []string, stdout io.Writer) error, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strings.Join(tc.Args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.Args, &out)
			var ue cli.UsageError
			if tc.Usage != errors.As(err, &ue) {
				t.Fatalf("run(%q) = %v, want a usage error: %v", tc.Args, err, tc.Usage)
			}
			if !tc.Usage && err != nil {
				t.Fatalf("run(%q) = %v", tc.Args, err)
			}
			if !strings.Contains(out.String(), tc.WantOut) {
				t.Errorf("output %q lacks %q", out.String(), tc.WantOut)
			}
		})
	}
}
