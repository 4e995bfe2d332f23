package health

// numBuckets is the resolution of the failure-rate window: the window
// slides in steps of Window/numBuckets, so a call is forgotten between
// 0.9 × Window and Window after it was observed.
const numBuckets = 10

// bucket counts the calls of one Window/numBuckets slice of time.
type bucket struct {
	slot      int64 // absolute index of the slice it holds: time / width
	successes int32
	failures  int32
}

// window is a bucketed ring of call counts over the last Window. It is
// not safe for concurrent use; its Member's mutex guards it.
type window struct {
	width   int64 // nanoseconds per bucket, at least 1
	buckets [numBuckets]bucket
}

func newWindow(w int64) window {
	width := w / numBuckets
	if width < 1 {
		width = 1
	}
	var win window
	win.width = width
	win.reset()
	return win
}

// reset forgets every call.
func (w *window) reset() {
	for i := range w.buckets {
		w.buckets[i] = bucket{slot: -1}
	}
}

// record counts one call at now (nanoseconds since the tracker's start).
func (w *window) record(now int64, failure bool) {
	slot := now / w.width
	b := &w.buckets[slot%numBuckets]
	if b.slot != slot {
		*b = bucket{slot: slot}
	}
	if failure {
		b.failures++
	} else {
		b.successes++
	}
}

// counts returns the calls and failures of the buckets still inside the
// window at now.
func (w *window) counts(now int64) (calls, failures int) {
	oldest := now/w.width - (numBuckets - 1)
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.slot >= oldest {
			calls += int(b.successes + b.failures)
			failures += int(b.failures)
		}
	}
	return calls, failures
}
