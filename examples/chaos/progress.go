package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress shows how the run is going: on a terminal one line redrawn with
// \r a few times a second, otherwise one plain line every interval.
type progress struct {
	w        io.Writer
	tty      bool
	every    time.Duration
	start    time.Time
	total    int
	plain    *counters
	sturdy   *counters
	stop     chan struct{}
	wg       sync.WaitGroup
	lastLine int
}

func startProgress(w io.Writer, every time.Duration, start time.Time, total int, plain, sturdy *counters) *progress {
	p := &progress{w: w, tty: isTerminal(w), every: every, start: start, total: total, plain: plain, sturdy: sturdy, stop: make(chan struct{})}
	interval := every
	if p.tty {
		interval = 200 * time.Millisecond
	}
	p.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	})
	return p
}

func (p *progress) line() string {
	pct := func(a, b int64) string {
		if b == 0 {
			return "    -"
		}
		return fmt.Sprintf("%5.1f%%", 100*float64(a)/float64(b))
	}
	pd, sd := p.plain.done.Load(), p.sturdy.done.Load()
	so := p.sturdy.ok.Load()
	return fmt.Sprintf("%5.1fs  calls %d/%d  plain ok %s  sturdy ok %s  fallback %s",
		time.Since(p.start).Seconds(), p.sturdy.started.Load(), p.total,
		pct(p.plain.ok.Load(), pd), pct(so, sd), pct(p.sturdy.fallback.Load(), so))
}

func (p *progress) draw() {
	l := p.line()
	if !p.tty {
		fmt.Fprintln(p.w, l)
		return
	}
	pad := max(0, p.lastLine-len(l))
	p.lastLine = len(l)
	fmt.Fprintf(p.w, "\r%s%*s", l, pad, "")
}

// Stop ends the display; on a terminal it leaves the last line drawn.
func (p *progress) Stop() {
	close(p.stop)
	p.wg.Wait()
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
