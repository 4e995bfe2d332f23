package httpmw

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
)

// onlyReader hides every method but Read, so that http.NewRequest cannot
// set GetBody or ContentLength: an unreplayable body.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func unreplayable(t testing.TB, b []byte, knownLength bool) *http.Request {
	req, err := http.NewRequest(http.MethodPost, chatPath, onlyReader{bytes.NewReader(b)})
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	if knownLength {
		req.ContentLength = int64(len(b))
	}
	return req
}

func TestReqBodyKeepsTheBodyAtItsExactSize(t *testing.T) {
	for _, n := range []int{1, chunkMin - 1, chunkMin, chunkMin + 1, 3 * chunkMax, 3*chunkMax + 17} {
		src := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		for _, known := range []bool{true, false} {
			var b reqBody
			require.NoError(t, b.init(unreplayable(t, src, known), 1<<20))
			require.Equal(t, bodyBuffered, b.mode)
			assert.EqualValues(t, n, b.size)
			held := cap(b.buf)
			for _, c := range b.chunks {
				held += cap(c)
			}
			if known {
				assert.Nil(t, b.chunks, "a known length is read into one piece")
				assert.LessOrEqual(t, held, n+1)
			} else {
				assert.LessOrEqual(t, held, n+chunkMax, "pieces never hold more than one piece's slack")
				for i, c := range b.chunks {
					if i < len(b.chunks)-1 {
						assert.Equal(t, len(c), cap(c), "every piece but the last is full")
					}
				}
			}
			// Every attempt reads the whole body through its own reader,
			// as Read and as WriteTo.
			for range 2 {
				rc, getBody, size, err := b.plain()
				require.NoError(t, err)
				assert.EqualValues(t, n, size)
				got, err := io.ReadAll(rc)
				require.NoError(t, err)
				assert.Equal(t, src, got)
				rc2, err := getBody()
				require.NoError(t, err)
				var w bytes.Buffer
				_, err = io.Copy(&w, rc2)
				require.NoError(t, err)
				assert.Equal(t, src, w.Bytes())
			}
			assert.Equal(t, src, b.flat())
		}
	}
}

func TestReqBodyLengthMismatchIsAnError(t *testing.T) {
	req := unreplayable(t, []byte("0123456789"), false)
	req.ContentLength = 5
	var b reqBody
	assert.ErrorIs(t, b.init(req, 1<<20), errBodyLonger)
	req = unreplayable(t, []byte("0123"), false)
	req.ContentLength = 5
	b = reqBody{}
	assert.ErrorIs(t, b.init(req, 1<<20), errBodyShorter)
}

func TestReqBodyTooLongIsSentOnceWithoutReadAhead(t *testing.T) {
	src := []byte(strings.Repeat("x", 100))
	cr := &countingReader{r: bytes.NewReader(src)}
	req, err := http.NewRequest(http.MethodPost, chatPath, onlyReader{cr})
	require.NoError(t, err)
	req.ContentLength = 100
	var b reqBody
	require.NoError(t, b.init(req, 10))
	assert.True(t, b.once())
	assert.Zero(t, cr.n, "a known length over the limit: nothing read ahead")
	rc, _, n, err := b.plain()
	require.NoError(t, err)
	assert.EqualValues(t, 100, n)
	got, _ := io.ReadAll(rc)
	assert.Equal(t, src, got)

	// Unknown length: the pieces read so far, then the rest.
	b = reqBody{}
	require.NoError(t, b.init(unreplayable(t, src, false), 10))
	assert.True(t, b.once())
	rc, _, _, err = b.plain()
	require.NoError(t, err)
	got, _ = io.ReadAll(rc)
	assert.Equal(t, src, got)
}

// failFirst reads the whole request body, then answers each call's
// first attempt (told by the X-Call header) 503 and its second 200: the
// issue's failover after the first endpoint has read the body. First
// attempts wait until all calls have buffered their bodies, so that every
// body is in memory at once.
type failFirst struct {
	n       atomic.Int64
	mu      sync.Mutex
	seen    map[string]bool
	arrived sync.WaitGroup
	barrier bool
}

func newFailFirst(calls int) *failFirst {
	f := &failFirst{seen: map[string]bool{}, barrier: calls > 0}
	f.arrived.Add(calls)
	return f
}

func (f *failFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	n, err := io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	f.n.Add(n)
	f.mu.Lock()
	id := r.Header.Get("X-Call")
	first := !f.seen[id]
	f.seen[id] = true
	f.mu.Unlock()
	code := 200
	if first {
		code = 503
	}
	if first && f.barrier {
		f.arrived.Done()
		all := make(chan struct{})
		go func() { f.arrived.Wait(); close(all) }()
		select {
		case <-all:
		case <-time.After(10 * time.Second): // a call that never came: go on, the test fails on its count
		}
	}
	return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"usage":{"total_tokens":1}}`)), ContentLength: 28, Request: r}, nil
}

// heapObjects is the bytes of heap objects, live or not yet swept: what
// the garbage collector has to deal with.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeapGrowth runs f while a goroutine samples the heap every
// millisecond (for at most limit), and returns the highest growth over
// the heap before f.
func peakHeapGrowth(limit time.Duration, f func()) uint64 {
	runtime.GC()
	base := heapObjects()
	var peak atomic.Uint64
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapObjects(); h > base && h-base > peak.Load() {
				peak.Store(h - base)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	f()
	if h := heapObjects(); h > base && h-base > peak.Load() {
		peak.Store(h - base)
	}
	cancel()
	<-done
	return peak.Load()
}

// The must-show: 20 concurrent calls with 8 MiB unreplayable
// bodies, each failing over after the first endpoint read the body: the
// heap grows by at most 20 × (8 MiB + 64 KiB) × 1.2.
func TestBigUnreplayableBodiesPeakHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 160 MiB")
	}
	const (
		calls = 20
		size  = 8 << 20
	)
	bound := uint64(float64(calls*(size+64<<10)) * 1.2)
	src := bytes.Repeat([]byte("a"), size) // shared, allocated before the baseline
	for _, known := range []bool{true, false} {
		base := newFailFirst(calls)
		tr, err := NewTransport(base, append(testOpts(),
			WithTier(degrade.Tier{}, URL("first", "http://127.0.0.1:1", nil), URL("second", "http://127.0.0.2:2", nil)))...)
		require.NoError(t, err)
		reqs := make([]*http.Request, calls)
		for i := range reqs {
			reqs[i] = unreplayable(t, src, known)
			reqs[i].Header.Set("X-Call", strconv.Itoa(i))
		}
		var start sync.WaitGroup
		start.Add(1)
		peak := peakHeapGrowth(30*time.Second, func() {
			var wg sync.WaitGroup
			for _, req := range reqs {
				wg.Go(func() {
					start.Wait()
					resp, err := tr.RoundTrip(req)
					if assert.NoError(t, err) {
						assert.Equal(t, 200, resp.StatusCode)
						_, _ = io.Copy(io.Discard, resp.Body)
						_ = resp.Body.Close()
					}
				})
			}
			start.Done()
			wg.Wait()
		})
		_ = tr.Close()
		assert.EqualValues(t, 2*calls*size, base.n.Load(), "each body was read twice: by the failing endpoint and by the one that served")
		t.Logf("known length %v: peak heap growth %.1f MiB for %d calls of %d MiB (bound %.1f MiB)",
			known, float64(peak)/(1<<20), calls, size>>20, float64(bound)/(1<<20))
		assert.LessOrEqual(t, peak, bound)
		runtime.KeepAlive(src)
	}
}

// BenchmarkRoundTripBigUnreplayableBody is one call with an 8 MiB body
// without GetBody that fails over after the first endpoint read it:
// B/op is what the call allocates for it (the body is 8 MiB).
func BenchmarkRoundTripBigUnreplayableBody(b *testing.B) {
	src := bytes.Repeat([]byte("a"), 8<<20)
	for _, known := range []bool{true, false} {
		name := "unknown-length"
		if known {
			name = "known-length"
		}
		b.Run(name, func(b *testing.B) {
			base := newFailFirst(0)
			tr, err := NewTransport(base, append(testOpts(),
				WithTier(degrade.Tier{}, URL("first", "http://127.0.0.1:1", nil), URL("second", "http://127.0.0.2:2", nil)))...)
			require.NoError(b, err)
			defer tr.Close()
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := unreplayable(b, src, known)
				req.Header.Set("X-Call", strconv.Itoa(i))
				i++
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%v %v", resp, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}
