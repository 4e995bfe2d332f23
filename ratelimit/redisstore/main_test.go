package redisstore

import (
	"testing"

	"go.uber.org/goleak"
)

// go-redis keeps goroutines per client until it is closed, and the Store
// starts one to write missed cooldowns; the check pins that none outlives
// its test's cleanup.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
