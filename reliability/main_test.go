package reliability

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy/reliability/internal/rig"
)

var tableFile = flag.String("table", "", "rewrite the figures table between the markers of this file (RELIABILITY.md)")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(rig.IgnoreToxiproxy()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	if code == 0 && *tableFile != "" {
		if err := writeTable(*tableFile); err != nil {
			fmt.Fprintf(os.Stderr, "table: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
