package health

import (
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects the StateChanges a tracker reports.
type recorder struct {
	mu  sync.Mutex
	scs []StateChange
}

func (r *recorder) hook(sc StateChange) {
	r.mu.Lock()
	r.scs = append(r.scs, sc)
	r.mu.Unlock()
}

func (r *recorder) changes() []StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]StateChange(nil), r.scs...)
}

// newTracker builds a tracker whose hook records into the returned recorder.
func newTracker(t *testing.T, cfg Config) (*Tracker, *recorder) {
	t.Helper()
	r := &recorder{}
	if cfg.OnStateChange == nil {
		cfg.OnStateChange = r.hook
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr, r
}
