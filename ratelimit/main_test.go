package ratelimit

import (
	"testing"

	"go.uber.org/goleak"
)

// Wait runs timers, not goroutines; the check pins that it stays so.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
