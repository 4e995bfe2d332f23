package body

import "io"

// DrainLimit is how much of a discarded body Drain reads before closing
// it: enough to let a small error body or a short JSON answer finish, so
// that HTTP/1.1 can reuse the connection, without paying for a long one.
const DrainLimit = 64 << 10

// Drain reads at most limit bytes of rc, discarding them, then closes rc.
// A nil rc is a no-op.
func Drain(rc io.ReadCloser, limit int64) {
	if rc == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, rc, limit)
	_ = rc.Close()
}
